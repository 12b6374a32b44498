import DistillJSON

/// One decoded JSON-RPC 2.0 message from a client.
public enum IncomingMessage: Sendable {
    case request(id: RequestID, method: String, params: JSON?)
    case notification(method: String, params: JSON?)
    /// A response to a server-to-client request; distilld sends none, so these are logged and dropped.
    case response(id: JSON)

    /// Validates the envelope. On failure returns the error and, when the id could be
    /// read, the id to answer with (JSON-RPC answers `id: null` otherwise).
    public static func decode(_ message: JSON) -> Result<IncomingMessage, EnvelopeError> {
        guard message.isObject else {
            return .failure(EnvelopeError(error: .invalidRequest("a message must be an object, got \(message.kindDescription)"), id: nil))
        }
        let rawID = message["id"]
        var id: RequestID? = nil
        if let rawID {
            guard let parsed = RequestID(rawID) else {
                return .failure(
                    EnvelopeError(error: .invalidRequest("id must be a string, a number or null, got \(rawID.kindDescription)"), id: nil))
            }
            id = parsed
        }
        guard message["jsonrpc"]?.stringValue == "2.0" else {
            return .failure(EnvelopeError(error: .invalidRequest(#"jsonrpc must be exactly "2.0""#), id: id?.json))
        }
        if message["method"] == nil, message["result"] != nil || message["error"] != nil, let rawID {
            return .success(.response(id: rawID))
        }
        guard let methodJSON = message["method"] else {
            return .failure(EnvelopeError(error: .invalidRequest("method is missing"), id: id?.json))
        }
        guard let method = methodJSON.stringValue else {
            return .failure(
                EnvelopeError(error: .invalidRequest("method must be a string, got \(methodJSON.kindDescription)"), id: id?.json))
        }
        let params = message["params"]
        if let params, !(params.isObject || params.isArray || params.isNull) {
            return .failure(
                EnvelopeError(
                    error: .invalidRequest("params must be an object, an array or null, got \(params.kindDescription)"), id: id?.json))
        }
        let normalised = (params?.isNull ?? true) ? nil : params
        if let id {
            // An explicit `"id": null` is a request per JSON-RPC 2.0 (discouraged) and is answered with null.
            return .success(.request(id: id, method: method, params: normalised))
        }
        return .success(.notification(method: method, params: normalised))
    }
}

/// A message whose envelope is not valid JSON-RPC, with the id to answer to when it could be read.
public struct EnvelopeError: Error, Sendable {
    public let error: ResponseError
    public let id: JSON?
}

/// Builders for outgoing messages.
public enum OutgoingMessage {
    public static func result(id: JSON, _ result: JSON) -> JSON {
        ["jsonrpc": "2.0", "id": id, "result": result]
    }

    public static func error(id: JSON?, _ error: ResponseError) -> JSON {
        ["jsonrpc": "2.0", "id": id ?? JSON.null, "error": error.json]
    }

    public static func notification(_ method: String, _ params: JSON) -> JSON {
        ["jsonrpc": "2.0", "method": JSON(method), "params": params]
    }
}
