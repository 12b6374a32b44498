/// The JSON Schemas of `Protocol/schemas`, as text, embedded at build time (Plugins/EmbedSchemas).
///
/// They are the wire contract the Python tests validate every reply against; the MCP layer turns
/// them into its tools' input and output schemas, so what an agent is told cannot drift from what
/// the daemon does.
public enum ProtocolSchemas {
    /// File name (`distill.score.params.json`) to its text.
    public static let files: [String: String] = Dictionary(embedded.map { ($0.name, $0.text) }, uniquingKeysWith: { a, _ in a })
}
