"""Client for distilld, the knowledge-distillation analysis daemon.

    from distilld import Client
    with Client.start() as d:                       # a private daemon on stdio
        r = d.call("distill/score", teacher={"probs": [[0.7, 0.2, 0.1]]},
                   students={"A": {"probs": [[0.6, 0.3, 0.1]]}},
                   loss={"name": "forward_kl"})

    d = Client.connect()                            # the shared daemon (started if needed)

    d.load_model("lm", "SmolLM2-135M-Instruct.Q4_1.gguf")     # model/*: language models it runs
    d.tokenize("lm", "Hello")                       # {"tokens": [...], "pieces": [...]}
    d.logprobs("lm", ["Hello world", "Bye"], topk=5)  # batched; full=True decodes [T, V] arrays
    d.generate("lm", "Once upon a time", max_tokens=16, temperature=0)

    d.score_text("lm", {"S": "lm"}, "pairs", loss="forward_kl")   # teacher-forced, on a dataset
    d.export_targets("lm", "pairs", "targets.safetensors", k=20)   # top-k targets for training

Standard library only. When numpy is installed, numpy arrays and torch tensors
(bfloat16 included; torch is never imported by this package) passed as parameters
are sent in distilld's binary array form (dtype, shape, base64).

`distilld.ray` (with the `ray` extra) runs distill/score, teacher/export and the context gap
over many daemons on a Ray cluster, split by example and merged exactly (README, "Beyond one
machine"); it is not imported here.

Without `binary=`, the daemon is $DISTILLD, else `distilld` on PATH; when there is
none, `Client.start` and `Client.connect` raise DaemonNotFound (a FileNotFoundError)
saying so.
"""

from .client import Cancelled, Client, DaemonNotFound, RPCError, encode_array, decode_array, default_socket_path

__all__ = ["Cancelled", "Client", "DaemonNotFound", "RPCError", "encode_array", "decode_array",
           "default_socket_path"]
__version__ = "0.1.0"
