import DistillServer
import DistillTestSupport
import Testing

/// The methods of `MethodTable` against Protocol/schemas, so the code and the contract
/// cannot drift apart.
struct MethodSchemaTests {
    /// Every method has a params schema, and a method with a request type accepts exactly
    /// the members that schema lists (`RequestType.keys`).
    @Test func typedMethodsAcceptExactlyTheMembersTheirParamsSchemaLists() throws {
        #expect(MethodTable.requests.contains { $0.keys != nil })
        for method in MethodTable.requests {
            let properties = try Schemas.properties(Schemas.params(of: method.method))
            guard let keys = method.keys else { continue }
            #expect(
                keys == properties,
                "\(method.method): only in the type \(keys.subtracting(properties).sorted()), only in the schema \(properties.subtracting(keys).sorted())"
            )
        }
    }
}
