import DistillJSON
import DistillProtocol
import DistillTestSupport
import Testing

/// The lifecycle request types: what their params may hold (as Protocol/schemas says), how
/// they are read, and the JSON their responses write.
struct LifecycleRequestTests {
    static func params(_ text: String) throws -> Field { try Field.params(json(text)) }

    /// The log levels `initialize` accepts are the ones its schema lists (the keys of every
    /// typed method are compared with their schemas in DistillServerTests, over `MethodTable`).
    @Test func logLevelsAreTheOnesTheSchemaLists() throws {
        let options = try Schemas.load("initialize.params.json")["properties"]?["initializationOptions"]
        let levels = options?["properties"]?["logMessages"]?["enum"]?.arrayValue?.compactMap(\.stringValue)
        #expect(levels == InitializeRequest.logLevels)
    }

    @Test func initializeReadsTheLogLevelItAsksFor() throws {
        #expect(try InitializeRequest(params: Field.params(nil)).logMessages == nil)
        #expect(try InitializeRequest(params: Self.params(#"{"processId": 12, "capabilities": {}}"#)).logMessages == nil)
        #expect(try InitializeRequest(params: Self.params(#"{"initializationOptions": null}"#)).logMessages == nil)
        #expect(try InitializeRequest(params: Self.params(#"{"initializationOptions": {}}"#)).logMessages == nil)
        for level in InitializeRequest.logLevels {
            let request = try InitializeRequest(params: Self.params(#"{"initializationOptions": {"logMessages": ""# + level + #""}}"#))
            #expect(request.logMessages == level)
        }
    }

    @Test func initializeRefusesOptionsItCannotRead() throws {
        for (text, words) in everyKind where text != "{}" && text != "null" {
            expectInvalidParams(field: "params.initializationOptions", "must be an object, got \(words)") {
                _ = try InitializeRequest(params: Self.params(#"{"initializationOptions": "# + text + "}"))
            }
        }
        let error = responseError {
            _ = try InitializeRequest(params: Self.params(#"{"initializationOptions": {"logMessages": "loud"}}"#))
        }
        #expect(error?.code == .invalidParams)
        #expect(
            error?.message
                == #"params.initializationOptions.logMessages: unknown value "loud"; expected one of error, warning, info, log, debug, off"#
        )
        #expect(error?.data?["field"]?.stringValue == "params.initializationOptions.logMessages")
        #expect(error?.data?["allowed"]?.arrayValue?.compactMap(\.stringValue) == InitializeRequest.logLevels)
        expectInvalidParams(field: "params.initializationOptions.logMessages", "must be a string, got a number") {
            _ = try InitializeRequest(params: Self.params(#"{"initializationOptions": {"logMessages": 3}}"#))
        }
    }

    @Test func responsesWriteTheirResults() throws {
        let initialize = InitializeRequest.Response(serverName: "distilld", serverVersion: "9.9", capabilities: ["methods": []])
        #expect(initialize.json.serializedString() == #"{"serverInfo":{"name":"distilld","version":"9.9"},"capabilities":{"methods":[]}}"#)
        #expect(NullResponse().json.isNull)
        #expect(StopRequest.Response().json.serializedString() == #"{"stopping":true}"#)
        let echoed = try PingRequest(params: Self.params(#"{"payload": [1, {"a": null}]}"#))
        #expect(echoed.response.json.serializedString() == #"{"pong":true,"payload":[1,{"a":null}]}"#)
        #expect(try PingRequest(params: Self.params("{}")).response.json.serializedString() == #"{"pong":true}"#)
        var status = StatusRequest.Response(
            serverName: "distilld", serverVersion: "1", pid: 7, uptimeSeconds: 1.5, sessions: 2, requestsServed: 3, residentBytes: 4,
            budgetBytes: nil, entriesResidentBytes: 5, entriesMappedBytes: 6, teachers: 1, datasets: 0, liveJSONValues: 8,
            liveJSONAllocations: 9)
        let json = status.json
        #expect(
            json.keys == ["serverInfo", "pid", "uptimeSeconds", "sessions", "requestsServed", "memory", "teachers", "datasets", "json"])
        #expect(try Set(json.keys) == Schemas.properties("distilld.status.result.json"))
        #expect(json["memory"]?["budgetBytes"]?.isNull == true)
        #expect(json["memory"]?.keys == ["residentBytes", "budgetBytes", "entriesResidentBytes", "entriesMappedBytes"])
        #expect(json["json"]?["liveAllocations"]?.intValue == 9 && json["uptimeSeconds"]?.doubleValue == 1.5)
        status.budgetBytes = 1 << 40
        #expect(status.json["memory"]?["budgetBytes"]?.intValue == 1 << 40)
    }
}
