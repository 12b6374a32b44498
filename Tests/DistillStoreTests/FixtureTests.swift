import DistillJSON
import DistillTensor
import Foundation
import Testing

@testable import DistillStore

/// Files written by numpy and safetensors (Tests/python/make_store_fixtures.py).
@Suite(.enabled(if: Fixtures.available, "needs python3 with numpy and safetensors: \(Fixtures.skipReason)"))
struct FixtureTests {
    func load(_ file: String, _ options: TeacherOptions = TeacherOptions(), format: TeacherFormat? = nil) throws -> LoadedTeacher {
        try TeacherLoader.load(TeacherSource(path: Fixtures.path(file), format: format, options: options))
    }

    func close(_ a: [Float], _ b: [Float], tol: Float = 1e-6) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in x == y || abs(x - y) <= tol * max(1, abs(y)) }
    }

    @Test func detectsFormats() throws {
        #expect(try TeacherLoader.detectFormat(path: Fixtures.path("dense_f32.safetensors")) == .safetensors)
        #expect(try TeacherLoader.detectFormat(path: Fixtures.path("v1_f4.npy")) == .npy)
        #expect(try TeacherLoader.detectFormat(path: Fixtures.path("v3_f8.npy")) == .npy)
        #expect(try TeacherLoader.detectFormat(path: Fixtures.path("teacher_dense.jsonl")) == .jsonl)
    }

    @Test func safetensorsDenseFloat32WithMaskAndMetadata() throws {
        let t = try load("dense_f32.safetensors")
        let e = Fixtures.values["dense_f32"]!
        #expect(t.outputs.kind == .logits)
        #expect(!t.outputs.isTopK)
        #expect([t.outputs.examples, t.outputs.positions, t.outputs.vocab] == expectedInts(e["shape"]))
        #expect(values(t.outputs).dtype == .float32)
        #expect(close(floats(values(t.outputs)), expectedFloats(e["values"]), tol: 0))
        #expect(ints(t.outputs.mask!) == expectedInts(e["mask"]))
        #expect(t.outputs.mask!.dtype == .uint8)
        #expect(t.ids == expectedStrings(e["ids"]))
        #expect(t.vocabulary == expectedStrings(e["vocab"]))
        #expect(t.nonFinite == NonFiniteCounts(nan: 0, posInf: 0, negInf: 1))
        #expect(t.mappedBytes > 0)
        #expect(t.residentBytes == 6)  // only the mask copy
        // The values point into the map, not a copy.
        let map = try MappedFile(path: Fixtures.path("dense_f32.safetensors"))
        #expect(map.size == t.mappedBytes)
    }

    @Test func safetensorsFloat16WithLengths() throws {
        let t = try load("dense_f16.safetensors")
        let e = Fixtures.values["dense_f16"]!
        #expect(t.outputs.kind == .logprobs)
        #expect(values(t.outputs).dtype == .float16)
        #expect(values(t.outputs).shape == expectedInts(e["shape"]))
        #expect(close(floats(values(t.outputs)), expectedFloats(e["values"]), tol: 0))
        #expect(ints(t.outputs.mask!) == expectedInts(e["mask"]))
        #expect(t.sourceDtype == "F16")
    }

    @Test func safetensorsTwoDimensionalMeansOnePosition() throws {
        let t = try load("dense_nv_f16.safetensors")
        #expect(t.outputs.kind == .probs)
        #expect(values(t.outputs).shape == [4, 1, 3])
        #expect(t.outputs.positions == 1)
        #expect(close(floats(values(t.outputs)), expectedFloats(Fixtures.values["dense_nv_f16"]!["values"]), tol: 0))
    }

    @Test func safetensorsBFloat16WrittenByHand() throws {
        let t = try load("dense_bf16.safetensors")
        let e = Fixtures.values["dense_bf16"]!
        #expect(values(t.outputs).dtype == .bfloat16)
        #expect(values(t.outputs).shape == [2, 3, 4])
        #expect(floats(values(t.outputs)) == expectedFloats(e["values"]))
        #expect(ints(t.outputs.mask!) == expectedInts(e["mask"]))
        #expect(t.ids == ["b0", "b1"])
    }

    @Test func safetensorsTopKInt32() throws {
        let t = try load("topk_i32.safetensors")
        let e = Fixtures.values["topk_i32"]!
        #expect(t.outputs.isTopK)
        #expect(t.outputs.kind == .logprobs)
        #expect(t.outputs.vocab == 10)
        #expect(indices(t.outputs)!.dtype == .int32)
        #expect(indices(t.outputs)!.shape == [3, 2, 4])
        #expect(ints(indices(t.outputs)!) == expectedInts(e["indices"]))
        #expect(floats(values(t.outputs)) == expectedFloats(e["values"]))
        #expect(t.ids == ["t0", "t1", "t2"])
    }

    @Test func safetensorsTopKInt64TwoDimensional() throws {
        let t = try load("topk_i64.safetensors")
        let e = Fixtures.values["topk_i64"]!
        #expect(t.outputs.kind == .probs)
        #expect(t.outputs.vocab == 7)
        #expect(indices(t.outputs)!.shape == [3, 1, 2])
        #expect(ints(indices(t.outputs)!) == expectedInts(e["indices"]))
        #expect(floats(values(t.outputs)) == expectedFloats(e["values"]))
        // vocabSize below the largest index is refused.
        let err = storeError { _ = try load("topk_i64.safetensors", TeacherOptions(vocabSize: 6)) }
        #expect(err?.code == .indexOutOfRange)
        #expect(err?.tensor == "topk_indices")
    }

    @Test func npyVersionsOneTwoThree() throws {
        let v1 = try load("v1_f4.npy")
        #expect(v1.outputs.kind == .logits)
        #expect(values(v1.outputs).dtype == .float32)
        #expect(values(v1.outputs).shape == [3, 2, 5])
        #expect(floats(values(v1.outputs)) == expectedFloats(Fixtures.values["v1_f4"]!["values"]))
        #expect(v1.residentBytes == 0)

        let v2 = try load("v2_f2.npy", TeacherOptions(kind: .logprobs))
        #expect(v2.outputs.kind == .logprobs)
        #expect(values(v2.outputs).dtype == .float16)
        #expect(values(v2.outputs).shape == [2, 1, 4])
        #expect(floats(values(v2.outputs)) == expectedFloats(Fixtures.values["v2_f2"]!["values"]))

        let v3 = try load("v3_f8.npy")
        #expect(values(v3.outputs).dtype == .float32)
        #expect(floats(values(v3.outputs)) == expectedFloats(Fixtures.values["v3_f8"]!["values"]))
        #expect(v3.warnings.contains { $0.contains("float64") })
        #expect(v3.residentBytes == 2 * 3 * 4 * 4)

        let raw = try NpyArray(path: Fixtures.path("v3_f8.npy"))
        #expect(raw.version.major == 3)
        #expect(raw.descr == "<f8")
        #expect(try NpyArray(path: Fixtures.path("v2_f2.npy")).version.major == 2)
    }

    @Test func npyTopKWithIndicesAndMaskFiles() throws {
        for idx in ["topk_indices_i4.npy", "topk_indices_i8.npy"] {
            for maskFile in ["mask_b1.npy", "mask_u1.npy"] {
                let t = try load(
                    "topk_values.npy",
                    TeacherOptions(kind: .logits, vocabSize: 5, indices: Fixtures.path(idx), mask: Fixtures.path(maskFile)))
                let e = Fixtures.values["npy_topk"]!
                #expect(t.outputs.isTopK)
                #expect(ints(indices(t.outputs)!) == expectedInts(e["indices"]))
                #expect(floats(values(t.outputs)) == expectedFloats(e["values"]))
                #expect(ints(t.outputs.mask!) == expectedInts(e["mask"]))
            }
        }
        let err = storeError {
            _ = try load("topk_values.npy", TeacherOptions(vocabSize: 4, indices: Fixtures.path("topk_indices_i4.npy")))
        }
        #expect(err?.code == .indexOutOfRange)
        #expect(err?.numbers["value"] == 4)
    }

    @Test func npyRefusesFortranOrderAndBigEndian() {
        let f = storeError { _ = try load("fortran.npy") }
        #expect(f?.code == .unsupportedDtype)
        #expect(f?.message.contains("Fortran") == true)
        #expect(f?.file == Fixtures.path("fortran.npy"))
        let b = storeError { _ = try load("bigendian.npy") }
        #expect(b?.code == .unsupportedDtype)
        #expect(b?.message.contains(">f4") == true)
    }

    @Test func jsonlTeachers() throws {
        let d = try load("teacher_dense.jsonl")
        let e = Fixtures.values["teacher_dense_jsonl"]!
        #expect(values(d.outputs).shape == [2, 2, 3])
        #expect(floats(values(d.outputs)) == expectedFloats(e["values"]))
        #expect(ints(d.outputs.mask!) == expectedInts(e["mask"]))
        #expect(d.ids == ["j0", "j1"])
        #expect(d.nonFinite.negInf == 1)

        let k = try load("teacher_topk.jsonl", TeacherOptions(vocabSize: 5))
        #expect(k.outputs.isTopK)
        #expect(k.outputs.kind == .logprobs)
        #expect(k.outputs.vocab == 5)
        #expect(ints(indices(k.outputs)!) == [3, 1, 0, 4])
        #expect(close(floats(values(k.outputs)), expectedFloats(Fixtures.values["teacher_topk_jsonl"]!["values"])))
    }

    @Test func vocabularies() throws {
        #expect(try Vocabulary.read(path: Fixtures.path("tokenizer_bpe.json")) == expectedStrings(Fixtures.values["tokenizer_bpe"]))
        #expect(try Vocabulary.read(path: Fixtures.path("tokenizer_unigram.json")) == expectedStrings(Fixtures.values["tokenizer_unigram"]))
        #expect(try Vocabulary.read(path: Fixtures.path("vocab.txt")) == expectedStrings(Fixtures.values["vocab_txt"]))
        #expect(try Vocabulary.read(path: Fixtures.path("vocab_list.json")) == expectedStrings(Fixtures.values["vocab_list"]))
        // A vocabulary gives top-k outputs their size and labels.
        let t = try load("teacher_topk.jsonl", TeacherOptions(vocabulary: Fixtures.path("tokenizer_bpe.json")))
        #expect(t.outputs.vocab == 8)
        #expect(Vocabulary.label(4, in: t.vocabulary) == "he")
        #expect(Vocabulary.label(6, in: t.vocabulary) == "<id 6>")
        #expect(Vocabulary.label(99, in: t.vocabulary) == "<id 99>")
    }

    @Test func pairedDatasetsFromJSONLinesAndCSV() throws {
        let e = Fixtures.values["paired"]!
        for (file, linesKey) in [("paired.jsonl", "jsonl_lines"), ("paired.csv", "csv_lines")] {
            let d = try DatasetLoader.load(DatasetSource(path: Fixtures.path(file)))
            #expect(d.kind == .paired)
            #expect(d.examples.map(\.id) == expectedStrings(e["ids"]), "\(file)")
            #expect(d.examples.map(\.full) == expectedStrings(e["full"]), "\(file)")
            #expect(d.examples.map(\.simplified) == expectedStrings(e["simplified"]), "\(file)")
            #expect(d.examples.map(\.target) == ["France", nil, nil], "\(file)")
            #expect(d.examples.map(\.label) == [.integer(1), .string("yes"), nil], "\(file)")
            #expect(d.examples.map(\.line) == expectedInts(e[linesKey]), "\(file)")
            #expect(!d.idsSynthesized)
        }
        let mapped = try DatasetLoader.load(
            DatasetSource(
                path: Fixtures.path("paired_fields.jsonl"), options: DatasetOptions(fields: ["full": "context", "simplified": "query"])))
        #expect(mapped.examples.map(\.full) == ["long context one", "long context two"])
        #expect(mapped.examples.map(\.id) == ["1", "2"])
        #expect(mapped.idsSynthesized)
        #expect(mapped.warnings.count == 1)
    }

    @Test func inputLists() throws {
        let e = Fixtures.values["inputs"]!
        let txt = try DatasetLoader.load(DatasetSource(path: Fixtures.path("inputs.txt"), kind: .inputs))
        #expect(txt.inputs.map(\.text) == expectedStrings(e["txt"]))
        #expect(txt.inputs.map(\.line) == expectedInts(e["txt_lines"]))
        let jl = try DatasetLoader.load(
            DatasetSource(path: Fixtures.path("inputs.jsonl"), kind: .inputs, options: DatasetOptions(fields: ["input": "prompt"])))
        #expect(jl.inputs.map(\.text) == expectedStrings(e["jsonl"]))
        let js = try DatasetLoader.load(DatasetSource(path: Fixtures.path("inputs.json"), kind: .inputs))
        #expect(js.format == .json)
        #expect(js.inputs.map(\.text) == expectedStrings(e["json"]))
        #expect(js.inputs.map(\.line) == expectedInts(e["json_lines"]))
    }

    @Test func registryMatchesTeacherToDatasetById() throws {
        let r = Registry()
        let t = try r.loadTeacher(name: "t", source: TeacherSource(path: Fixtures.path("dense_f32.safetensors")))
        let d = try r.loadDataset(name: "d", source: DatasetSource(path: Fixtures.path("paired.jsonl")))
        let m = match(teacher: t, dataset: d)
        #expect(m.method == .id)
        #expect(m.pairs.isEmpty)
        #expect(m.unmatchedTeacherRows == [0, 1, 2])
        #expect(m.unmatchedExamples == [0, 1, 2])
        let info = try r.teacher("t")
        #expect(info.outputs.examples == 3)
        #expect(info.outputs.positions == 2)
        #expect(info.outputs.vocab == 5)
        #expect(!info.outputs.isTopK)
        #expect(info.values.dtype == .float32)
        #expect(info.nonFinite.negInf == 1)
        #expect(info === t)
        let k = try r.loadTeacher(name: "k", source: TeacherSource(path: Fixtures.path("topk_i32.safetensors")))
        #expect(k.k == 4)
        #expect(k.outputs.isTopK)
    }
}
