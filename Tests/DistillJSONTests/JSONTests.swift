import Dispatch
import DistillSync
import Foundation
import Synchronization
import Testing

@testable import DistillJSON

struct JSONValueTests {
    @Test func parsesAndWritesRoundTrip() throws {
        let j = try JSON.parse(#"{"a":[1,2.5,"x",true,null],"b":{"c":-3}}"#)
        #expect(j.kind == .object)
        #expect(j["a"]?.count == 5)
        #expect(j["a"]?[0]?.intValue == 1)
        #expect(j["a"]?[1]?.doubleValue == 2.5)
        #expect(j["a"]?[2]?.stringValue == "x")
        #expect(j["a"]?[3]?.boolValue == true)
        #expect(j["a"]?[4]?.isNull == true)
        #expect(j["b"]?["c"]?.intValue == -3)
        #expect(j.serializedString(sortKeys: true) == #"{"a":[1,2.5,"x",true,null],"b":{"c":-3}}"#)
    }

    @Test func rejectsDuplicateKeysAndGarbage() {
        #expect(throws: JSONParseError.self) { try JSON.parse(#"{"a":1,"a":2}"#) }
        #expect(throws: JSONParseError.self) { try JSON.parse("{") }
        #expect(throws: JSONParseError.self) { try JSON.parse("") }
    }

    @Test func integersStayIntegers() throws {
        let j = try JSON.parse("[1, 1.0, 9007199254740993]")
        #expect(j[0]?.kind == .integer)
        #expect(j[1]?.kind == .real)
        #expect(j[1]?.intValue == nil)
        #expect(j[2]?.intValue == 9_007_199_254_740_993)
    }

    @Test func nonFiniteNumbersAreSpelledAsStrings() {
        #expect(JSON(Double.infinity).serializedString() == #""Infinity""#)
        #expect(JSON(-Double.infinity).serializedString() == #""-Infinity""#)
        #expect(JSON(Double.nan).serializedString() == #""NaN""#)
        #expect(JSON("Infinity").doubleValue == .infinity)
    }

    @Test func childrenOutliveTheirParent() throws {
        var parent: JSON? = try JSON.parse(#"{"k":{"deep":"value"}}"#)
        let child = parent!["k"]!
        parent = nil
        #expect(child["deep"]?.stringValue == "value")
    }

    @Test func stringsKeepEmbeddedNulAndUnicode() throws {
        let j = try JSON.parse(#"["a\u0000b", "é€😀"]"#)
        #expect(j[0]?.stringValue == "a\u{0}b")
        #expect(j[1]?.stringValue == "é€😀")
        #expect(JSON("tab\there").serializedString() == #""tab\there""#)
    }

    @Test func literalsBuildValues() {
        let j: JSON = ["name": "A", "loss": 0.5, "ok": true, "list": [1, 2]]
        #expect(j.serializedString(sortKeys: true) == #"{"list":[1,2],"loss":0.5,"name":"A","ok":true}"#)
    }
}

struct NumericArrayTests {
    @Test func flattensRectangularArrays() throws {
        let j = try JSON.parse("[[[1,2],[3,4]],[[5,6],[7,8]]]")
        let (v, shape) = try j.flattenedNumbers()
        #expect(shape == [2, 2, 2])
        #expect(v == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func namesTheRaggedOrNonNumericElement() throws {
        let ragged = try JSON.parse("[[1,2],[3]]")
        #expect {
            try ragged.flattenedNumbers()
        } throws: { error in
            (error as? NumericArrayError)?.path == "[1]"
        }
        let text = try JSON.parse(#"[[1,2],[3,"x"]]"#)
        #expect {
            try text.flattenedNumbers()
        } throws: { error in
            (error as? NumericArrayError)?.path == "[1][1]"
        }
    }

    @Test func readsNonFiniteSpellings() throws {
        let (v, _) = try JSON.parse(#"[0, "-Infinity", "NaN"]"#).flattenedNumbers()
        #expect(v[1] == -.infinity)
        #expect(v[2].isNaN)
    }

    @Test func integersRejectFractions() throws {
        #expect(try JSON.parse("[1,2,3]").flattenedIntegers().values == [1, 2, 3])
        #expect(throws: NumericArrayError.self) { try JSON.parse("[1,2.5]").flattenedIntegers() }
    }
}

struct JSONParseFailureTests {
    /// jansson gives up without a message when an allocation fails; the error used to
    /// read "at line -1, column -1" and said nothing of memory.
    @Test(arguments: [0, 1, 5, 50])
    func runningOutOfMemoryIsSaidPlainly(after allocations: Int) {
        let text = "[" + Array(repeating: "[1.5,\"abc\",{\"k\":2}]", count: 200).joined(separator: ",") + "]"
        do {
            let value = try JSON.failingAllocations(after: allocations) { try JSON.parse(text) }
            Issue.record("parsed despite failing allocations: \(value.count) elements")
        } catch let error as JSONParseError {
            #expect(error.reason == .outOfMemory)
            #expect(error.description.contains("out of memory"), "\(error.description)")
            #expect(!error.description.contains("-1"), "\(error.description)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
        // Parsing works again once memory is back.
        #expect((try? JSON.parse(text))?.count == 200)
    }

    /// A string whose copy cannot be allocated made jansson say "invalid token".
    @Test func aStringThatCannotBeCopiedIsOutOfMemoryNotInvalid() {
        let text = "\"" + String(repeating: "x", count: 100_000) + "\""
        for allocations in 0..<10 {
            #expect(throws: JSONParseError.self) {
                do {
                    _ = try JSON.failingAllocations(after: allocations) { try JSON.parse(text) }
                } catch let error as JSONParseError {
                    #expect(error.reason == .outOfMemory, "after \(allocations): \(error.description)")
                    throw error
                }
            }
        }
    }

    @Test func syntaxErrorsKeepTheirPosition() {
        do {
            _ = try JSON.parse("{\"a\":\n  tru}")
        } catch let error as JSONParseError {
            #expect(error.reason == .syntax)
            #expect(error.description.hasSuffix("at line 2, column 5"), "\(error.description)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func nestingTooDeepIsNamed() {
        let text = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        do {
            _ = try JSON.parse(text)
            Issue.record("parsed 5000 levels")
        } catch let error as JSONParseError {
            #expect(error.reason == .tooDeep)
            #expect(error.description.contains("nested deeper than 2048"), "\(error.description)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}

struct ParseMemoryEstimateTests {
    private func estimate(_ text: String) -> Int {
        Array(text.utf8).withUnsafeBytes { JSON.parseMemoryEstimate($0) }
    }

    @Test func smallNumbersCostPerValueNotPerByte() {
        let n = 100_000
        let perValue = Double(estimate("[" + Array(repeating: "0", count: n).joined(separator: ",") + "]")) / Double(n)
        #expect(perValue >= 40 && perValue <= 64)
    }

    @Test func aLongStringCostsAboutThreeTimesItsLength() {
        let n = 1 << 20
        let ratio = Double(estimate("\"" + String(repeating: "a", count: n) + "\"")) / Double(n)
        #expect(ratio >= 2.5 && ratio <= 3.5)
    }

    @Test func punctuationInsideStringsIsNotCounted() {
        let plain = estimate(#"["aaaaaaaa"]"#)
        #expect(estimate(#"["a,:[{\"a"]"#) == plain)
    }
}

/// One value read from several threads at once, as `JSON` promises is safe: each
/// thread reads its own wrapper and drops it, the last one freeing the value on
/// whichever thread that is. Under `make sanitize` a reference-count slip is a
/// use-after-free (AddressSanitizer) and an unordered free a race (ThreadSanitizer).
struct JSONThreadingTests {
    /// Per-thread slots, so each thread drops its own wrapper without touching another's.
    final class Slots: Sendable {
        private let values: DistillSync.Mutex<[JSON?]>
        init(_ values: [JSON]) { self.values = DistillSync.Mutex(values) }
        func take(_ i: Int) -> JSON? {
            values.withLock { values in
                defer { values[i] = nil }
                return values[i]
            }
        }
    }

    @Test func lastReleaseOnAnotherThreadAfterReads() throws {
        for _ in 0..<200 {
            // Four wrappers of one array, whose parent is already gone.
            let slots = try { () throws -> Slots in
                let parent = try JSON.parse(#"{"a":[1,2,3]}"#)
                return Slots((0..<4).map { _ in parent["a"]! })
            }()
            let seen = Atomic<Int>(0)
            let arrived = Atomic<Int>(0)
            DispatchQueue.concurrentPerform(iterations: 4) { i in
                guard let a = slots.take(i) else { return }
                // Every thread holds its wrapper before any lets go (relaxed: no ordering of its own).
                arrived.add(1, ordering: .relaxed)
                while arrived.load(ordering: .relaxed) < 2 {}
                if a.kind == .array && a.count == 3 && a[2]?.intValue == 3 { seen.add(1, ordering: .relaxed) }
            }
            #expect(seen.load(ordering: .relaxed) == 4)
        }
    }
}
