import DistillJSON
import DistillProtocol
import DistillServer
import DistillStore
import Foundation
import Testing

/// teacher/* and dataset/* as request types: their replies keep the members and order the store
/// once wrote, and a bad teacher option is named exactly. (What they accept is checked against
/// their schemas with every other method, in `SchemaKeysTests`.)
struct StoreMethodTests {
    @Test func infoAndListRepliesKeepTheirMembersInOrder() {
        let client = TestClient()
        let teacherMembers = [
            "type", "name", "kind", "layout", "examples", "positions", "vocab", "dtype", "sourceDtype", "hasMask", "idCount",
            "vocabularyCount", "residentBytes", "mappedBytes", "nonFinite", "source", "warnings", "loadedAt",
        ]
        let demo = client.request("teacher/load", ["name": "demo", "path": "builtin:demo"])["result"]
        #expect(demo?.keys == teacherMembers)
        #expect(demo?["nonFinite"]?.keys == ["nan", "posInf", "negInf"])
        #expect(demo?["source"]?.isNull == true && demo?["sourceDtype"]?.stringValue == "float32")
        #expect(client.request("teacher/info", ["name": "demo"])["result"]?.keys == teacherMembers)
        let topK: JSON = ["indices": [[[0, 2]]], "values": [[[-0.1, -2.5]]], "vocab": 3]
        let k = client.request("teacher/load", ["name": "k", "data": ["topk": topK]])["result"]
        var withK = teacherMembers
        withK.insert("k", at: 7)
        #expect(k?.keys == withK && k?["k"]?.intValue == 2 && k?["layout"]?.stringValue == "topk")
        let list = client.request("teacher/list")["result"]?["teachers"]
        #expect(list?[0]?.keys == ["name", "count", "residentBytes", "mappedBytes", "path"])
        #expect(list?.arrayValue?.map { $0["name"]?.stringValue } == ["demo", "k"])
        let dataset = client.request("dataset/load", ["name": "d", "examples": [["id": 7, "full": "F", "simplified": "S", "label": 2]]])
        #expect(
            dataset["result"]?.keys
                == ["type", "name", "kind", "format", "count", "idsSynthesized", "bytes", "source", "warnings", "loadedAt"])
        let page = client.request("dataset/examples", ["name": "d"])["result"]
        #expect(page?.keys == ["total", "offset", "examples"])
        #expect(page?["examples"]?[0]?.keys == ["id", "full", "simplified", "line", "label"])
        #expect(page?["examples"]?[0]?["id"]?.stringValue == "7" && page?["examples"]?[0]?["label"]?.intValue == 2)
        #expect(client.request("teacher/unload", ["name": "k"])["result"]?.serializedString() == #"{"unloaded":"k"}"#)
    }

    @Test func aBadTeacherOptionIsNamedExactly() {
        let client = TestClient()
        let cases: [(JSON, String)] = [
            (["vocabSize": 0], "params.options.vocabSize"),
            (["kind": "scores"], "params.options.kind"),
            (["allowNonFinite": true, "colour": "red"], "params.options.colour"),
            (["vocabulary": 3, "bogus": 1], "params.options.vocabulary"),
            ([1], "params.options"),
        ]
        for (options, field) in cases {
            let reply = client.request("teacher/load", ["name": "t", "path": "/no/such/file", "options": options])
            #expect(reply["error"]?["code"]?.intValue == -32602, "\(options.serializedString())")
            #expect(reply["error"]?["data"]?["field"]?.stringValue == field, "\(options.serializedString())")
            #expect(reply["error"]?["message"]?.stringValue?.hasPrefix(field + ": ") == true)
        }
        // In an analysis the model's own options are named under it.
        let score = client.request(
            "distill/score", ["teacher": ["probs": [[0.5, 0.5]]], "students": ["A": ["path": "/x", "options": ["mask": false]]]])
        #expect(score["error"]?["data"]?["field"]?.stringValue == "params.students.A.options.mask")
        // Dataset options keep naming `params.options`, with the member in the message.
        let dataset = client.request("dataset/load", ["name": "d", "path": "/x.jsonl", "options": ["fields": ["context": "x"]]])
        #expect(dataset["error"]?["data"]?["field"]?.stringValue == "params.options")
        #expect(dataset["error"]?["message"]?.stringValue?.contains("'context'") == true)
    }

    @Test func aBuiltinTakesNoFileSettingsWhereverItIsNamed() {
        let client = TestClient()
        let load = client.request("teacher/load", ["name": "t", "path": "builtin:demo", "format": "npy"])["error"]
        #expect(load?["data"]?["field"]?.stringValue == "params.format")
        #expect(load?["message"]?.stringValue == "params.format: a builtin teacher has no format; give only its path")
        let score = client.request(
            "distill/score",
            ["teacher": ["path": "builtin:demo"], "students": ["A": ["path": "builtin:demo-student-A", "options": [:] as JSON]]])
        #expect(score["error"]?["code"]?.intValue == -32602)
        #expect(score["error"]?["data"]?["field"]?.stringValue == "params.students.A.options")
        let named: JSON = ["teacher": ["path": "builtin:nope"], "students": ["A": ["path": "builtin:demo"]]]
        let unknown = client.request("distill/score", named)["error"]
        #expect(unknown?["code"]?.intValue == 1004 && unknown?["data"]?["reason"]?.stringValue == "notFound")
        #expect(unknown?["data"]?["file"]?.stringValue == "builtin:nope")
    }
}
