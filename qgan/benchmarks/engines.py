"""Side-by-side timings of the engines: generator forward+backward, a training iteration, peak memory."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import platform
import resource
import statistics
import time

from qgan.runtime.files import write_atomic
from qgan.runtime.fresh_process import in_fresh_process

MODES = ("sf", "fock-eager", "fock-graph", "fock-xla")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of the benchmark grid."""

    cutoff: int
    layers: int
    batch: int
    modes: int = 2


@dataclasses.dataclass(frozen=True)
class Repeats:
    """How often each kind of measurement runs after warm-up (the median and the best are reported).

    A compiled call takes milliseconds, so its median spans about a second of calls rather than
    30 calls (0.1 s), which a shared machine's briefest slow spell could move.
    """

    sf_pass: int = 3
    sf_iteration: int = 2
    eager_pass: int = 5
    eager_iteration: int = 2
    compiled_pass: int = 300
    compiled_iteration: int = 100


def median_seconds(
    function, repeats: int, warmup: int, clock=time.perf_counter
) -> tuple[float, float, float]:
    """Runs function `warmup` times, then `repeats` times.

    Returns:
        (first-call seconds, median seconds, best seconds) by `clock`. The best is the call that
        the machine's other work slowed least (as `timeit` advises); the median is the typical one.
    """
    started = clock()
    function()
    first = clock() - started
    for _ in range(warmup - 1):
        function()
    durations = []
    for _ in range(repeats):
        started = clock()
        function()
        durations.append(clock() - started)
    return first, statistics.median(durations), min(durations)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(setting: Setting, mode: str, n_critic: int = 5, repeats: Repeats = Repeats()) -> dict:
    """Times one engine mode at one setting in this process.

    Args:
        setting: circuit size and batch.
        mode: one of MODES.
        n_critic: critic steps per training iteration.
        repeats: repetitions after warm-up.

    Returns:
        A record with the first-call, median and best seconds of a generator forward+backward pass
        and of one training iteration (n_critic critic steps and a generator step), and the peak
        resident memory of the process. Compiled modes are called as the trainer calls its
        compiled phases, through their concrete functions (DirectCall); the pass's median through
        tf.function's own call, which binds its arguments each time, is kept beside it
        (`pass_tf_function_median_s`, None for eager modes).
    """
    import numpy as np
    import tensorflow as tf

    from qgan.runtime.direct_call import DirectCall
    from qgan.runtime.xla_flags import set_fusion_emitters
    from qgan.training.builders import build_gan
    from qgan.training.config import TrainConfig

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    engine = "sf" if mode == "sf" else "fock"
    config = TrainConfig(
        readout="expectation",  # the engines' own comparison: the x-quadrature readout
        engine=engine,
        modes=setting.modes,
        layers=setting.layers,
        cutoff=setting.cutoff,
        batch_size=setting.batch,
        n_critic=n_critic,
        jit_compile=mode == "fock-xla",
    )
    # the emitters training uses (TrainConfig's default), unless XLA_FLAGS names them
    fusion_emitters = set_fusion_emitters(config.xla_fusion_emitters) if mode == "fock-xla" else None
    baseline = _peak_rss_mib()
    gan = build_gan(config, run_eagerly=mode in ("sf", "fock-eager"))
    generator = gan.generator
    rng = np.random.default_rng(0)
    z = tf.constant(rng.uniform(-1, 1, (setting.batch, setting.modes)), tf.float32)

    def forward_backward(z):
        with tf.GradientTape() as tape:
            coordinates, trace = generator(z, return_trace=True)
            loss = tf.reduce_sum(coordinates) + tf.reduce_sum(trace)
        return tape.gradient(loss, generator.trainable_variables)

    eager = mode in ("sf", "fock-eager")
    pass_repeats = repeats.sf_pass if mode == "sf" else repeats.eager_pass if eager else repeats.compiled_pass
    dispatched_median = None
    if not eager:
        # as Keras' fit compiles train_step: without AutoGraph, whose source conversion only adds time
        compiled = tf.function(forward_backward, autograph=False, jit_compile=mode == "fock-xla")
        # called as the trainer calls its compiled phases: through their concrete functions
        forward_backward = DirectCall(compiled)
    pass_first, pass_median, pass_best = median_seconds(
        lambda: [gradient.numpy() for gradient in forward_backward(z)], pass_repeats, 1 if eager else 2
    )
    if not eager:
        # the same graph through tf.function's own call, which binds its arguments every time
        _, dispatched_median, _ = median_seconds(
            lambda: [gradient.numpy() for gradient in compiled(z)], pass_repeats, 1
        )
    real = tf.constant(rng.normal(0, 1, (n_critic * setting.batch, 2)), tf.float32)
    train_step = gan.train_step
    if not eager:
        train_step = DirectCall(tf.function(train_step, autograph=False, jit_compile=mode == "fock-xla"))
    iteration_repeats = (
        repeats.sf_iteration
        if mode == "sf"
        else repeats.eager_iteration
        if eager
        else repeats.compiled_iteration
    )
    iteration_first, iteration_median, iteration_best = median_seconds(
        lambda: float(train_step(real)["g_loss"]), iteration_repeats, 1 if eager else 2
    )
    peak = _peak_rss_mib()
    return {
        **dataclasses.asdict(setting),
        "mode": mode,
        "n_critic": n_critic,
        "pass_first_s": pass_first,
        "pass_median_s": pass_median,
        "pass_best_s": pass_best,
        "pass_tf_function_median_s": dispatched_median,
        "iteration_first_s": iteration_first,
        "iteration_median_s": iteration_median,
        "iteration_best_s": iteration_best,
        "peak_rss_mib": round(peak, 1),
        "peak_increase_mib": round(peak - baseline, 1),
        "xla_fusion_emitters": fusion_emitters,
    }


DIAGONAL_GATES = ("Rgate", "Kgate")  # diagonal in the Fock basis: one complex product per amplitude


def circuit_flops(setting: Setting, reupload: bool = True) -> float:
    """Real FLOPs of one generator forward+backward pass applied as dense gate matrices.

    A gate on k modes multiplies each amplitude block by its c^k×c^k matrix: 8·c^k real FLOPs per
    amplitude (a complex multiply-add), 6 for a diagonal gate; the backward pass costs twice the
    forward one. Building the matrices and the readout are left out, so this is a floor.
    """
    from qgan.models.circuits import build_circuit

    amplitudes = setting.batch * setting.cutoff**setting.modes
    forward = 0.0
    for command in build_circuit(setting.modes, setting.layers, reupload=reupload).program.circuit:
        if type(command.op).__name__ in DIAGONAL_GATES:
            forward += 6.0 * amplitudes
        else:
            forward += 8.0 * amplitudes * setting.cutoff ** len(command.reg)
    return 3.0 * forward


def dense_gflops(size: int = 512, repeats: int = 20) -> float:
    """This machine's measured complex64 matmul speed in real GFLOP/s (the best of `repeats`)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (
        tf.constant((rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))).astype(np.complex64))
        for _ in range(2)
    )
    tf.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 8.0 * size**3 / best / 1e9


def add_floors(records: list, gflops: float) -> None:
    """Adds each record's FLOP floor (ms, at `gflops`) and how far its forward+backward is above it."""
    for record in records:
        setting = Setting(record["cutoff"], record["layers"], record["batch"], record["modes"])
        floor = circuit_flops(setting) / (gflops * 1e9)
        record["floor_ms"] = 1e3 * floor
        record["above_floor"] = record["pass_median_s"] / floor


def run_grid(settings, modes=MODES, n_critic: int = 5, repeats: Repeats = Repeats(), log=print) -> list:
    """Measures every (setting, mode) in a fresh child process, one after another.

    A fresh process per measurement keeps its peak memory its own; the processes run one at a
    time, so they do not compete for the cores.

    Returns:
        The records of `measure`, each with the sf-time over this-mode-time ratios of
        `add_speedups` when sf is among the modes.
    """
    records = []
    grid = list(itertools.product(settings, modes))
    gflops = None
    for position, (setting, mode) in enumerate(grid):
        if position < len(grid) - 1:
            record = in_fresh_process(measure, setting, mode, n_critic, repeats)
        else:  # the machine's matmul speed is timed in the last measurement's process, once it is done
            record, gflops = in_fresh_process(_measure_then_gflops, setting, mode, n_critic, repeats)
        log(
            f"cutoff {setting.cutoff:>2d} layers {setting.layers} batch {setting.batch:>4d} {mode:<10s} "
            f"pass {1e3 * record['pass_median_s']:10.2f} ms (best {1e3 * record['pass_best_s']:.2f}"
            f"{_through_tf_function(record)})  "
            f"iteration {1e3 * record['iteration_median_s']:10.2f} ms "
            f"(best {1e3 * record['iteration_best_s']:.2f})  "
            f"peak {record['peak_rss_mib']:.0f} MiB"
        )
        records.append(record)
    add_speedups(records)
    if gflops is None:  # an empty grid
        gflops = in_fresh_process(dense_gflops)
    log(f"dense complex64 matmul: {gflops:.0f} GFLOP/s")
    add_floors(records, gflops)
    for record in records:
        record["dense_gflops"] = gflops
    return records


def _measure_then_gflops(setting: Setting, mode: str, n_critic: int, repeats: Repeats) -> tuple:
    """`measure`, then `dense_gflops` in the same process: one TensorFlow start-up fewer."""
    return measure(setting, mode, n_critic, repeats), dense_gflops()


def _through_tf_function(record: dict) -> str:
    median = record.get("pass_tf_function_median_s")
    return "" if median is None else f", via tf.function {1e3 * median:.2f}"


def add_speedups(records: list) -> None:
    """Adds sf-time / mode-time ratios to each record whose setting also has an sf record.

    `pass_speedup` and `iteration_speedup` divide the medians; `pass_best_speedup` and
    `iteration_best_speedup` the best calls, where both records have them.
    """
    keys = ("cutoff", "layers", "batch", "modes")
    reference = {tuple(record[key] for key in keys): record for record in records if record["mode"] == "sf"}
    for record in records:
        sf_record = reference.get(tuple(record[key] for key in keys)) or {}
        for kind in ("pass", "iteration"):
            for statistic, name in (("median", f"{kind}_speedup"), ("best", f"{kind}_best_speedup")):
                key = f"{kind}_{statistic}_s"
                record[name] = sf_record[key] / record[key] if key in sf_record and key in record else None


def markdown_table(records: list) -> str:
    """The records as a Markdown table (times in milliseconds).

    Beside the forward+backward median stands its best call and that call's ratio to sf's best,
    which a shared machine's slow spells move less ("–" where a record has none).
    """
    lines = [
        "| cutoff | layers | batch | engine | fwd+bwd median (ms) | × sf | fwd+bwd best (ms) | × sf, best "
        "| FLOP floor (ms) | × floor | iteration median (ms) | × sf | first call (s) | peak RSS (MiB) |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for record in records:

        def ratio(kind, record=record):
            value = record.get(f"{kind}_speedup")
            return "–" if value is None else f"{value:,.0f}"

        best = "–" if record.get("pass_best_s") is None else f"{1e3 * record['pass_best_s']:,.2f}"
        floor = "–" if record.get("floor_ms") is None else f"{record['floor_ms']:,.2f}"
        above = "–" if record.get("above_floor") is None else f"{record['above_floor']:,.1f}"

        lines.append(
            f"| {record['cutoff']} | {record['layers']} | {record['batch']} | {record['mode']} "
            f"| {1e3 * record['pass_median_s']:,.2f} | {ratio('pass')} | {best} | {ratio('pass_best')} "
            f"| {floor} | {above} "
            f"| {1e3 * record['iteration_median_s']:,.2f} | {ratio('iteration')} "
            f"| {record['pass_first_s'] + record['iteration_first_s']:.1f} | {record['peak_rss_mib']:,.0f} |"
        )
    return "\n".join(lines)


def cpu_description(cpuinfo: str = "/proc/cpuinfo") -> dict:
    """The processor's model name and vector extensions, which decide XLA's code and its rounding.

    Args:
        cpuinfo: the kernel's processor description (Linux); elsewhere the result is empty.

    Returns:
        {"model": …, "vector_extensions": […]} (sse4*, avx*, fma), or {} without the file.
    """
    try:
        with open(cpuinfo) as file:
            text = file.read()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    extensions = sorted(
        flag for flag in fields.get("flags", "").split() if flag.startswith(("sse4", "avx", "fma"))
    )
    return {"model": fields.get("model name", ""), "vector_extensions": extensions}


def write_report(records: list, folder: str, extra: dict | None = None) -> str:
    """Writes the records and the machine's facts as JSON into folder; returns the file's path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"benchmark-{time.strftime('%Y%m%d-%H%M%S')}.json")
    report = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "cpu": cpu_description(),
        },
        "engines": records,
        **(extra or {}),
    }
    write_atomic(path, json.dumps(report, indent=2))
    return path
