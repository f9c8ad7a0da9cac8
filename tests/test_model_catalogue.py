"""`memchat model list | pull | use | remove`, against a loopback Hugging Face Hub (tests/hf_hub_standin.py)
serving the packaged SmolLM2 GGUF, driven through the real huggingface_hub in `memchat` subprocesses."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from assistant.backends.local import choose_runtime, packaged_gguf
from assistant.backends.onnx_engine import built_path
from assistant.model_catalogue import CATALOGUE, custom
from assistant.model_store import RECORD, ModelStoreError, converted_dir, downloads_dir, file_sha256, remove
from tests.conftest import MEMCHAT, REPO
from tests.hf_hub_standin import HubFile, HubStandIn

REPO_ID = "memchat-test/SmolLM2-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def hub():
    gguf = packaged_gguf()
    with HubStandIn({(REPO_ID, FILE): HubFile(gguf), ("memchat-test/Bad-Mirror", FILE): HubFile(gguf, etag_sha256="0" * 64)}) as server:
        yield server


@pytest.fixture
def env(cli_env, hub, tmp_path, model_cache):
    """The CLI's environment with the Hub at the stand-in, online, and a config dir of this test's own
    (where `memchat model use` writes its choice)."""
    out = {**cli_env, "HF_ENDPOINT": hub.url, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "MEMCHAT_MODEL_CACHE": str(tmp_path / "models")}
    out.pop("HF_HUB_OFFLINE", None)
    out.pop("MEMCHAT_MODEL", None)
    return out


def memchat(env, *args, timeout=300):
    return subprocess.run([*MEMCHAT, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def pull_test_model(env, name="test-smol", *extra):
    return memchat(env, "model", "pull", name, "--repo", REPO_ID, "--file", FILE, *extra)


def on_a_terminal(env, *args) -> tuple[int, str, str]:
    """(exit code, stdout, what a terminal showed on stderr): the progress bar is drawn on a terminal only."""
    import pty
    import threading

    controller, terminal = pty.openpty()
    shown = bytearray()

    def read() -> None:
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal closed
                return
            if not data:
                return
            shown.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    done = subprocess.run([*MEMCHAT, *args], env=env, stdout=subprocess.PIPE, stderr=terminal, text=True,
                          timeout=300, cwd=REPO)
    os.close(terminal)
    reader.join(timeout=10)
    os.close(controller)
    return done.returncode, done.stdout, shown.decode(errors="replace")


def one_line_error(done, code=1) -> str:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("memchat: error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_every_catalogue_entry_names_a_gguf_the_engines_can_load():
    """Each architecture is one transformers' GGUF loader converts and the ONNX Runtime GenAI builder builds;
    no checksum is invented (None until verified, else 64 hex digits)."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    builder = (REPO / ".venv/lib/python3.11/site-packages/onnxruntime_genai/models/builder.py")
    builder_text = builder.read_text() if builder.exists() else ""
    hf_names = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "gemma3": "Gemma3ForCausalLM"}
    assert {m.architecture for m in CATALOGUE.values()} == set(hf_names)
    for model in CATALOGUE.values():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", model.repo) and model.filename.endswith(".gguf"), model
        assert model.architecture in GGUF_SUPPORTED_ARCHITECTURES, model
        if builder_text:
            assert hf_names[model.architecture] in builder_text, model
        assert model.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", model.sha256), model
        assert model.licence and model.ram_gb > 0 and model.parameters_b > 0


def test_pull_resumes_a_cut_download_checks_it_and_records_it(env, hub):
    hub.files[(REPO_ID, FILE)].cut_after = 20_000_000  # the first transfer drops after 20 MB
    before = len(hub.gets())
    code, stdout, terminal = on_a_terminal(env, "model", "pull", "test-smol", "--repo", REPO_ID, "--file", FILE)
    assert code == 0, terminal
    gets = hub.gets()[before:]
    assert [r[2] for r in gets][0] is None and len(gets) == 2, gets
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", gets[1][2])[1])  # the last whole chunk it wrote, not 0
    assert 0 < resumed_at <= 20_000_000
    mb = packaged_gguf().stat().st_size >> 20
    assert "downloading test-smol (MB)" in terminal and f"{mb}/{mb}" in terminal  # memchat's bar, to the end
    assert "Trying to resume" in terminal  # huggingface_hub's own word for the retry
    target = os.path.join(env["MEMCHAT_MODEL_CACHE"], "downloads", "test-smol")
    record = json.loads(open(os.path.join(target, RECORD)).read())
    assert record["sha256"] == file_sha256(packaged_gguf()) and record["checked_against"] == ["hub"]
    assert record["size_bytes"] == packaged_gguf().stat().st_size
    assert record["sha256"] in stdout and "memchat model use test-smol" in stdout
    listed = json.loads(memchat(env, "model", "list", "--json").stdout)
    row = next(r for r in listed["models"] if r["name"] == "test-smol")
    assert row["status"] == "downloaded" and not row["in_use"] and listed["in_use"] == "smollm2-135m"
    again = pull_test_model(env)  # already there: nothing is fetched
    assert again.returncode == 0 and len(hub.gets()) == before + 2


def test_a_checksum_mismatch_removes_the_download(env, hub):
    line = one_line_error(pull_test_model(env, "wrong-sum", "--sha256", "ab" * 32))
    assert "does not match the catalogue's SHA-256" in line and "removed" in line
    assert not os.path.exists(os.path.join(env["MEMCHAT_MODEL_CACHE"], "downloads", "wrong-sum"))
    # A mirror whose file is not the one its ETag (the LFS SHA-256) names: refused the same way.
    bad = memchat(env, "model", "pull", "bad-mirror", "--repo", "memchat-test/Bad-Mirror", "--file", FILE)
    assert "does not match the Hub's SHA-256" in one_line_error(bad)
    assert not os.path.exists(os.path.join(env["MEMCHAT_MODEL_CACHE"], "downloads", "bad-mirror"))


def test_pull_failures_are_one_line(env):
    offline = one_line_error(pull_test_model({**env, "HF_HUB_OFFLINE": "1"}))
    assert "HF_HUB_OFFLINE is set" in offline
    no_network = one_line_error(pull_test_model({**env, "HF_ENDPOINT": "http://127.0.0.1:9"}))
    assert "cannot reach the Hub" in no_network
    missing = memchat(env, "model", "pull", "nope", "--repo", "memchat-test/Nothing-Here", "--file", "x.gguf")
    assert "is not on the Hub" in one_line_error(missing)
    assert "is not in the catalogue" in one_line_error(memchat(env, "model", "pull", "gpt-7"), code=2)
    assert "--repo and --file go together" in one_line_error(memchat(env, "model", "pull", "x", "--repo", "a/b"), code=2)
    assert "not downloaded; run: memchat model pull qwen2.5-0.5b" in one_line_error(
        memchat(env, "model", "use", "qwen2.5-0.5b"), code=2)
    assert not os.path.exists(os.path.join(env["MEMCHAT_MODEL_CACHE"], "downloads", "test-smol"))


def test_use_makes_ask_answer_with_the_pulled_model_and_remove_refuses_it_while_in_use(env):
    assert pull_test_model(env).returncode == 0
    used = memchat(env, "model", "use", "test-smol")
    assert used.returncode == 0 and "now test-smol" in used.stdout
    doctor = memchat(env, "doctor").stdout
    assert re.search(r"model = test-smol\s+\[memchat model use \(", doctor), doctor
    assert f"model: test-smol ({env['MEMCHAT_MODEL_CACHE']}/downloads/test-smol/{FILE}; 98 MB)" in doctor
    # The first ask converts the pulled file (~30 s on 2 quiet cores; minutes on a loaded machine)
    asked = memchat(env, "ask", "What is the capital of France?", "--greedy", "--max-new-tokens", "8", "--json",
                    timeout=1200)
    assert asked.returncode == 0, asked.stderr
    reply = json.loads(asked.stdout)
    assert reply["model"] == "test-smol" and "Paris" in reply["answer"]
    pulled = os.path.join(env["MEMCHAT_MODEL_CACHE"], "downloads", "test-smol", FILE)
    converted = converted_dir(Path(pulled), Path(env["MEMCHAT_MODEL_CACHE"]))
    assert (converted / "config.json").exists()  # the model ran from the pulled file's own conversion
    if choose_runtime()[0] == "onnx":  # this CPU runs ONNX Runtime: the build stops at the turn's end
        built = json.loads((built_path(converted) / "genai_config.json").read_text())
        assert built["model"]["eos_token_id"] == 2  # SmolLM2's <|im_end|>, its turn's end and its eos
    # MEMCHAT_MODEL still overrides the choice
    overridden = json.loads(memchat({**env, "MEMCHAT_MODEL": "smollm2-135m"}, "model", "list", "--json").stdout)
    assert overridden["in_use"] == "smollm2-135m" and overridden["in_use_source"].startswith("environment")

    refused = one_line_error(memchat(env, "model", "remove", "test-smol"))
    assert "is the local model in use" in refused and "memchat model use smollm2-135m" in refused
    assert os.path.exists(pulled)
    assert memchat(env, "model", "use", "smollm2-135m").returncode == 0
    removed = memchat(env, "model", "remove", "test-smol")
    assert removed.returncode == 0 and "removed test-smol" in removed.stdout
    assert not os.path.exists(os.path.dirname(pulled)) and not converted.exists()
    assert "not downloaded" in one_line_error(memchat(env, "model", "remove", "test-smol"))


def test_doctor_suggests_what_this_machines_cores_and_ram_can_run():
    from assistant.model_commands import suggestion

    assert "`memchat model pull qwen2.5-0.5b`" in suggestion(16.0, 12.0, 2)
    assert "`memchat model pull smollm2-1.7b`" in suggestion(64.0, 40.0, 8)
    assert "`memchat model pull qwen2.5-0.5b`" in suggestion(64.0, 40.0, 1)
    assert "keep smollm2-135m" in suggestion(2.0, 1.0, 4)  # nothing converts in 1 GB


def test_the_engines_stop_at_each_familys_end_of_turn_token(tmp_path):
    """Gemma 3's GGUF names <eos> but its template ends a turn with <end_of_turn>; Qwen's and SmolLM2's
    eos is their <|im_end|>. A tokenizer of each shape, made with the tokenizers library."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    from assistant.backends.turn_end import with_turn_ends

    def directory(name: str, vocab: dict) -> "os.PathLike":
        path = tmp_path / name
        path.mkdir()
        Tokenizer(WordLevel(vocab, unk_token="<unk>")).save(str(path / "tokenizer.json"))
        return path

    gemma = directory("gemma", {"<unk>": 3, "<eos>": 1, "<end_of_turn>": 106, "hello": 7})
    chatml = directory("chatml", {"<unk>": 0, "<|im_end|>": 2, "hello": 7})
    llama = directory("llama", {"<unk>": 0, "<|eot_id|>": 128009, "<|end_of_text|>": 128001})
    assert with_turn_ends(1, gemma) == [1, 106]
    assert with_turn_ends(2, chatml) == 2
    assert with_turn_ends([128001], llama) == [128001, 128009]
    assert with_turn_ends(5, tmp_path / "no-tokenizer") == 5


def test_remove_takes_a_downloaded_name_never_a_path(tmp_path):
    """`model use` takes a path, so `model remove ~/models` is a natural thing to type: it must not
    delete that directory, nor `..` the whole model cache."""
    cache = tmp_path / "cache"
    downloads_dir(cache).mkdir(parents=True)
    (cache / "embedder").mkdir()
    (cache / "embedder" / "weights.bin").write_bytes(b"keep")
    elsewhere = tmp_path / "my-models"
    elsewhere.mkdir()
    (elsewhere / "mine.gguf").write_bytes(b"GGUF")
    for name in (str(elsewhere), "..", ".", "", "../embedder", str(downloads_dir(cache))):
        with pytest.raises(ModelStoreError, match="is not downloaded"):
            remove(cache, name)
    assert (elsewhere / "mine.gguf").read_bytes() == b"GGUF" and (cache / "embedder" / "weights.bin").exists()


def test_a_custom_pull_cannot_take_a_catalogue_name():
    name = next(iter(CATALOGUE))
    with pytest.raises(ValueError, match="catalogue's name"):
        custom(name.upper(), "someone/else", "x.gguf")
    assert custom("my-model", "someone/else", "x.gguf").repo == "someone/else"
