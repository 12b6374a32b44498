/// What an agent is told about each distilld method it may call as an MCP tool.
///
/// The table is the one thing a new method needs to become a tool: its params and result
/// schemas come from `Protocol/schemas`, its handler from the server's method table. A method
/// with no entry here is not offered (lifecycle and daemon-wide requests are listed in `hidden`),
/// and a test checks that every method is in one list or the other.
public struct ToolDescription: Sendable {
    /// The JSON-RPC method the tool calls.
    public let method: String
    /// A short title for people.
    public let title: String
    /// For the model: what the tool answers, when to use it, and the units.
    public let description: String
    /// The tool changes nothing (MCP's `readOnlyHint`).
    public let readOnly: Bool
    /// The tool may remove something a user loaded (MCP's `destructiveHint`).
    public let destructive: Bool

    /// The tool's name: the method with `/` written `_` (`distill/score` → `distill_score`), since
    /// many agents accept only letters, digits, `_` and `-` in tool names.
    public var name: String { method.replacing("/", with: "_") }

    init(_ method: String, _ title: String, readOnly: Bool = true, destructive: Bool = false, _ description: String) {
        self.method = method
        self.title = title
        self.readOnly = readOnly
        self.destructive = destructive
        self.description = description
    }
}

extension ToolDescription {
    /// Methods that are not tools: a session's lifecycle, which MCP has its own form of, and
    /// stopping the whole daemon, which other clients of a shared daemon may be using.
    public static let hidden: Set<String> = ["initialize", "shutdown", "distilld/ping", "distilld/stop"]

    static let modelForms =
        "A model (teacher or student) is a loaded teacher's name, {\"teacher\": NAME}, a file {\"path\": ...} "
        + "(builtin:demo, builtin:demo-student-A and builtin:demo-student-B are built in), inline outputs "
        + "{\"probs\"|\"logits\"|\"logprobs\": [[...]]} (examples × vocabulary), or a loaded language model run on text "
        + "{\"model\": NAME, \"texts\": [...]}."
    static let teacherForced =
        " For context distillation, give {\"model\": T} as the teacher and {\"model\": S} as each student with "
        + "a paired `dataset` whose examples have targets: the teacher reads the full context, each student the "
        + "simplified one, and the loss is taken at every target token."

    /// Every tool, in the order `tools/list` gives them.
    public static let all: [ToolDescription] = [
        ToolDescription(
            "distill/score", "Score students against a teacher",
            "Which student is closest to the teacher, and by how much? Computes a distillation loss between a "
                + "teacher's output distributions and each student's (forward_kl by default; also reverse_kl, js, "
                + "cross_entropy, hinton and more, with temperature τ), per example and overall, and ranks the "
                + "students (`ranking`, `best`, `margin`). Use it to compare checkpoints or students. " + modelForms
                + teacherForced + " Losses are in nats (natural log), averaged over valid positions unless "
                + "`loss.reduction` says otherwise; `worst` lists the examples with the highest loss."),
        ToolDescription(
            "distill/explain", "Explain a loss",
            "Why is the loss what it is? For one example (`example`: an id or index) or all of them, names which "
                + "outputs carry the KL (contributions p·log(p/q)), compares forward and reverse KL, sweeps the "
                + "temperature, says where the gradient pushes each output, and with two or more students says "
                + "which is closer and why in one sentence (`closer`, `comparison`). `labels` names the outputs. "
                + modelForms + " Values in nats. The SVG charts it draws are also offered as resources "
                + "(resource links in the result)."),
        ToolDescription(
            "distill/diagnose", "Diagnose a distillation dataset",
            "Was the student trained on the simplified inputs (as intended) or by mistake on the teacher's full "
                + "contexts, and are the (full, simplified) pairs sound? Give a loaded paired `dataset` and, to "
                + "classify what the student saw, `inputs` (a loaded input list, inline texts, or a file such as "
                + "builtin:demo-inputs). Answers with a `summary`, a `classification` with a `verdict`, integrity "
                + "`findings` (identical or leaked simplifications, empty inputs, ...), with `contextGap` models "
                + "the KL (nats) the simplification costs per example, and with `behaviour` (loaded language "
                + "models) which dataset the student learnt from, judged by running it on both contexts."),
        ToolDescription(
            "distill/sequence", "Sequence-level loss over candidates",
            "The exact sequence-level cross-entropy and KL (nats) over an enumerated set of candidate outputs, "
                + "given each candidate's whole-sequence probability under the teacher and under each student "
                + "(arrays of probabilities, or {\"logprobs\": [...]}). Reports the teacher mass the set covers and "
                + "ranks the students by cross-entropy. Use it for beam or sampled candidate sets."),
        ToolDescription(
            "teacher/load", "Load a teacher", readOnly: false,
            "Loads a teacher's outputs (logits, probabilities or log-probabilities; examples × positions × "
                + "vocabulary) under a name every later call and every other client of the daemon can use. "
                + "`path` is a safetensors, .npy or JSON Lines file, or builtin:demo (6 examples over apple, banana, "
                + "cherry); or give `data` inline. Answers with the teacher's info (shape, kind, memory in bytes)."),
        ToolDescription(
            "teacher/list", "List loaded teachers", "The loaded teachers: name, example count, bytes held, source path."),
        ToolDescription(
            "teacher/info", "Describe a teacher",
            "A loaded teacher's info: kind, layout, examples, positions, vocabulary size, dtype, memory (bytes), "
                + "non-finite counts, source."),
        ToolDescription(
            "teacher/unload", "Unload a teacher", readOnly: false, destructive: true,
            "Forgets a loaded teacher (analyses already running keep it). Other clients of a shared daemon lose it too."),
        ToolDescription(
            "distill/audit", "Audit top-k truncation",
            "For a dense teacher and a student (loaded teachers, files, inline outputs, or models run on texts), what "
                + "keeping only the teacher's top k costs the forward KL at each k: under the two tail policies (renormalize, "
                + "tail_bucket) and under plain truncation, the error against the dense KL (nats per position), how many "
                + "positions go negative (where a training loop would clamp), the teacher's tail mass and the student's mass "
                + "outside the teacher's top k, and the smallest k whose error stays within `bound`."),
        ToolDescription(
            "teacher/generate", "Sample a model over a dataset",
            "Runs a loaded model over every example of a paired dataset (its full context, or the simplified one, "
                + "formatted by prompt: a separator, a template or the model's chat template) and samples n completions of each, with the model's log-probability (natural log) of each "
                + "completion: sequence-level targets. Reproducible for a seed. Feed the candidates to distill_sequence with "
                + "{\"model\", \"prompt\"} sides to get a student's exact cross-entropy over them."),
        ToolDescription(
            "teacher/export", "Export a model's top-k targets", readOnly: false,
            "Runs a loaded model (the teacher) over every example of a paired dataset with targets, reading the full "
                + "context (or the simplified one) then the target, and writes its top-k log-probabilities (natural log) "
                + "at every target token to a safetensors file, with the probability mass outside the top k, a mask and "
                + "the target ids: offline targets for training a student, loadable back with teacher_load. Answers with "
                + "the file's path, size in bytes, the mean and largest tail mass, and target tokens per second."),
        ToolDescription(
            "dataset/load", "Load a dataset", readOnly: false,
            "Loads a paired dataset (each example a full context, its simplified input, and optionally a target "
                + "and label) or a list of training inputs, under a name. `path` is JSON Lines, CSV, text or JSON, "
                + "or builtin:demo (6 pairs) / builtin:demo-inputs (an input list, with kind \"inputs\"); or give "
                + "`examples` or `inputs` inline. Answers with the dataset's info (kind, example count, warnings)."),
        ToolDescription("dataset/list", "List loaded datasets", "The loaded datasets: name, example count, bytes held, source path."),
        ToolDescription(
            "dataset/info", "Describe a dataset", "A loaded dataset's info: kind, format, example count, bytes, warnings, source."),
        ToolDescription(
            "dataset/unload", "Unload a dataset", readOnly: false, destructive: true,
            "Forgets a loaded dataset. Other clients of a shared daemon lose it too."),
        ToolDescription(
            "dataset/examples", "Read a dataset's examples",
            "A page of a loaded dataset's examples (`offset`, `limit` up to 10000), each with its 1-based line in the file."),
        ToolDescription(
            "model/load", "Load a language model", readOnly: false,
            "Loads a language model under a name: a GGUF file, a Hugging Face model directory, or an ARPA n-gram "
                + "file (`path`), or builds an n-gram model from a loaded dataset's text (`build`). A loaded model "
                + "can stand for a teacher or student in the analyses ({\"model\": NAME, \"texts\": [...]})."),
        ToolDescription("model/list", "List loaded models", "The loaded language models: name, architecture, parameters, bytes held."),
        ToolDescription(
            "model/info", "Describe a model", "A loaded language model's info: architecture, vocabulary, context length, memory."),
        ToolDescription(
            "model/unload", "Unload a model", readOnly: false, destructive: true,
            "Forgets a loaded language model. Other clients of a shared daemon lose it too."),
        ToolDescription("model/tokenize", "Tokenize text", "How a loaded model's tokenizer splits a text: token ids and pieces."),
        ToolDescription("model/detokenize", "Detokenize", "The text a loaded model's tokenizer makes of token ids."),
        ToolDescription(
            "model/logprobs", "Next-token log-probabilities",
            "What a loaded model predicts at every position of one or more texts: the log-probability (nats) of "
                + "the token that follows, the entropy, the top k alternatives, and on request the whole distribution."),
        ToolDescription(
            "model/generate", "Generate text",
            "Completions of a prompt from a loaded model (temperature, top-k, top-p, a seed: the same seed gives "
                + "the same completions), each with its tokens, text, log-probability (nats) and why it stopped."),
        ToolDescription(
            "distilld/status", "Daemon status",
            "The daemon's health: uptime (s), sessions, requests served, loaded teachers and datasets, and memory "
                + "(resident bytes, the memory budget, bytes the loaded entries hold)."),
    ]
}
