import DistillTransport
import FuzzSupport

/// Both framers (Content-Length and newline-delimited). The first byte picks the
/// framing (detected, or forced either way), the message limit and the size of the
/// pieces the rest is fed in; the events must be the same whether the stream
/// arrives whole or in pieces, and no message may exceed the limit.
@_cdecl("FuzzFraming_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in fuzz(data!, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // Framing reports bad streams as events; nothing may throw.
    fuzzInput(data, size, refusing: Never.self) { control, stream in
        checkFraming(stream, control: control)
    }
}

private func checkFraming(_ stream: UnsafeRawBufferPointer, control: UInt8) {
    let framing: Framing? = [nil, .contentLength, .lines, nil][Int(control & 3)]
    let limit = [8, 64, 1024, 1 << 20][Int(control >> 2 & 3)]
    let piece = [1, 2, 3, 7, 16, 64, 512, 4096][Int(control >> 4 & 7)]

    var whole = MessageFramer(maxMessageBytes: limit, framing: framing)
    let expected = summary(whole.feed(stream) + whole.finish())

    var pieces = MessageFramer(maxMessageBytes: limit, framing: framing)
    var events: [FrameEvent] = []
    var offset = 0
    while offset < stream.count {
        let n = min(piece, stream.count - offset)
        events += pieces.feed(UnsafeRawBufferPointer(rebasing: stream[offset..<offset + n]))
        offset += n
    }
    events += pieces.finish()
    let actual = summary(events)

    for case .message(let body) in events where body.count > limit {
        fatalError("a \(body.count)-byte message passed the \(limit)-byte limit")
    }
    // A header longer than the header limit is refused as soon as that many bytes are
    // buffered, so only shorter streams must frame alike whatever the pieces.
    if stream.count <= MessageFramer.maxHeaderBytes, expected != actual {
        fatalError("fed whole: \(expected)\nfed in \(piece)-byte pieces: \(actual)")
    }
}

/// An event with its error message reduced to the kind (wording may name different sizes).
private enum Summary: Equatable {
    case message([UInt8])
    case error(FramingError.Kind)
}

private func summary(_ events: [FrameEvent]) -> [Summary] {
    events.map { event in
        switch event {
        case .message(let body): return .message(body)
        case .error(let error): return .error(error.kind)
        }
    }
}
