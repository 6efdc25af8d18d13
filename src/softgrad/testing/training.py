"""Checks of predictions and training (chapter 5): labels, vectorisation, the SGD loop, learning."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from softgrad import reference
from softgrad._failures import fail
from softgrad.gradcheck import relative_error
from softgrad.i18n import N_, _, ngettext
from softgrad.mistakes import Mistake, suspects
from softgrad.testing.core import (
    _describe_call,
    _measured_call,
    call_student,
    expected_dtype,
    result_problem,
    worst_entries,
)
from softgrad.testing.diagnosis import Evidence, batch_positions, name_mistakes, run_quietly
from softgrad.testing.rerun import watched_only_in_kernel


def check_labels_against_reference(
    function: Callable[..., object],
    reference: Callable[..., object],
    *args: object,
    arg_names: Sequence[str],
    case: str = "",
    mistakes: Mapping[Mistake, Sequence[Callable[..., object]]] | None = None,
    **kwargs: object,
) -> None:
    """Check a function that returns integer labels (predictions) against a trusted one, exactly."""
    __tracebackhide__ = True
    name = getattr(reference, "__name__", "function")
    known = suspects(name) if mistakes is None else mistakes
    expected = np.asarray(reference(*args, **kwargs))
    what = _describe_call(name, args, kwargs, arg_names, case)
    outcome = call_student(function, *args, arg_names=arg_names, name=name, mistakes=known, **kwargs)
    value = outcome.value
    if type(value) is not np.ndarray:
        kind = _("None (is a `return` missing?)") if value is None else _("a {type}").format(type=type(value).__name__)
        fail(_("{what} returned {kind}; it should return a NumPy array of {count} integer labels.").format(
            what=what, kind=kind, count=expected.shape[0]))
    problem = None
    if value.shape != expected.shape:
        problem = _("returned an array of shape {actual}; expected one label per row, shape {shape}.").format(
            actual=value.shape, shape=expected.shape)
    elif not np.issubdtype(value.dtype, np.integer):
        problem = _("returned dtype {actual}; labels are integers (np.argmax returns them: do not return the scores "
                    "or the probabilities themselves).").format(actual=value.dtype)
    wrong = [] if problem else np.flatnonzero(value != expected)
    if problem is None and len(wrong) == 0:
        return
    lines = [f"{what} {problem}" if problem else
             ngettext("{what} predicts the wrong class for {wrong} of {count} row, for example row {row}: yours "
                      "{mine}, expected {right}.",
                      "{what} predicts the wrong class for {wrong} of {count} rows, for example row {row}: yours "
                      "{mine}, expected {right}.", len(expected)).format(
                 what=what, wrong=len(wrong), count=len(expected), row=int(wrong[0]), mine=int(value[wrong[0]]),
                 right=int(expected[wrong[0]]))]
    evidence = Evidence(known, tuple(args), dict(kwargs), student=function,
                        rows=batch_positions(args, arg_names, kwargs))
    raw = np.asarray(value, dtype=np.float64) if np.issubdtype(value.dtype, np.number) else None
    if raw is not None:
        named = name_mistakes(evidence, raw, expected.astype(np.float64) if raw.shape == expected.shape else None,
                              lambda a, b: a.shape == b.shape and bool(np.array_equal(a, b)))
        lines += [m.describe() for m in named]
    fail("\n".join(lines))


def count_lines_run(function: Callable[..., object], *args: object, **kwargs: object) -> tuple[object, int]:
    """``(result, lines)``: the result of one call, and how many lines of Python it ran.

    Lines are counted with :func:`sys.settrace` in every Python frame except those of this
    library: the student's own code, and Python code it calls in NumPy or elsewhere. A loop
    over N rows runs at least N lines, whether it is written as a ``for`` loop, a
    comprehension, ``map`` or ``np.apply_along_axis``; whole-array operations run a handful,
    whatever the size of the data (NumPy's compiled loops are not Python lines).
    """
    import sys
    from pathlib import Path

    library = (str(Path(__file__).resolve().parent),)
    lines = 0

    def local_trace(frame, event, arg):  # noqa: ARG001 (the signature sys.settrace requires)
        nonlocal lines
        if event == "line":
            lines += 1
        return local_trace

    def global_trace(frame, event, arg):  # noqa: ARG001
        return None if frame.f_code.co_filename.startswith(library) else local_trace

    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        result = function(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return result, lines


def check_vectorised(
    function: Callable[..., object],
    *args: object,
    name: str,
    max_lines: int,
    arg_names: Sequence[str],
    case: str = "",
    **kwargs: object,
) -> None:
    """Check that one call runs at most ``max_lines`` lines of the student's own Python code.

    No timing is involved (timings are noisy and belong to benchmarks): the count of lines
    executed (:func:`count_lines_run`) does not depend on the machine, and a loop over the
    rows of the input shows up as thousands of lines.
    """
    __tracebackhide__ = True
    if watched_only_in_kernel(function, "check_vectorised"):
        return  # lines are counted in the notebook run; the re-run sees only the proxy's lines
    from softgrad.mistakes import PYTHON_LOOP_OVER_ROWS

    what, lines = _measured_call(count_lines_run, function, args, kwargs, name=name, arg_names=arg_names,
                                 case=case)
    if lines > max_lines:
        fail(_("{what} ran {lines} lines of Python (yours, and the Python parts of NumPy that it called); a "
               "vectorised version runs a few (the limit is {limit}, whatever the number of rows).").format(
            what=what, lines=lines, limit=max_lines) + "\n" + PYTHON_LOOP_OVER_ROWS.describe())


def _training_result(value: object, what: str, shapes: tuple[tuple[int, ...], tuple[int, ...]],
                     dtype: np.dtype, epochs: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    __tracebackhide__ = True
    if not isinstance(value, tuple | list) or len(value) != 3:
        fail(_("{what} returned {type}; it should return the tuple (W, b, history).").format(
            what=what, type=type(value).__name__))
    W, b, history = value
    for label, array, shape in (("W", W, shapes[0]), ("b", b, shapes[1])):
        problem = result_problem(array, shape=shape, dtype=dtype, part=True)
        if problem:
            fail(_("{output} from {what}").format(output=label, what=what) + f" {problem}")
    if not isinstance(history, dict) or "loss" not in history:
        kind = type(history).__name__
        if isinstance(history, dict):
            kind = _("{type} with keys {keys}").format(type=kind, keys=sorted(history))
        fail(_("history from {what} should be a dict with a key 'loss' (a list with one number per epoch); it is "
               "{kind}").format(what=what, kind=kind))
    losses = history["loss"]
    if not isinstance(losses, list | tuple | np.ndarray) or len(losses) != epochs:
        fail(_("history['loss'] from {what} should hold one number per epoch ({epochs}); it holds {held}.").format(
            what=what, epochs=epochs, held=len(losses) if hasattr(losses, "__len__") else type(losses).__name__))
    losses = [float(v) for v in losses]
    return np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64), losses


def check_first_sgd_step(
    train: Callable[..., object],
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    lr: float,
    reg: float,
) -> None:
    """One epoch of one full batch from zero weights must be exactly one gradient step.

    ``train(X, y, num_classes, lr=lr, epochs=1, batch_size=N, reg=reg, seed=0)`` must return
    ``W = -lr * dW`` and ``b = -lr * db`` (the gradients at zero). This pins down the update
    rule independently of shuffling; known mistakes (a flipped sign, shifted labels, a step
    N times too long) are recognised.
    """
    __tracebackhide__ = True
    X = np.asarray(X)
    n, d = X.shape
    kwargs = {"lr": lr, "epochs": 1, "batch_size": n, "reg": reg, "seed": 0}
    name = "train_softmax_regression"
    what = _describe_call(name, (X, y, num_classes), kwargs, ("X", "y", "num_classes"),
                          N_("one full-batch step from zero weights"))
    outcome = call_student(train, X, y, num_classes, arg_names=("X", "y", "num_classes"), name=name, **kwargs)
    W, b, _history = _training_result(outcome.value, what, ((d, num_classes), (num_classes,)), expected_dtype(X), 1)
    expected_W, expected_b = reference.sgd_first_step(X, y, num_classes, lr, reg)
    actual, expected = np.concatenate([W.ravel(), b]), np.concatenate([expected_W.ravel(), expected_b])
    tolerance = max(1e-8, 100 * float(np.finfo(expected_dtype(X)).eps))
    if relative_error(actual, expected) <= tolerance:
        return
    lines = [_("{what}: W and b should be -lr * dW and -lr * db, the gradients at W = 0 and b = 0; relative error "
               "{error:.2e}.").format(what=what, error=relative_error(actual, expected))]
    for label, mine, right in (("W", W, expected_W), ("b", b, expected_b)):
        if relative_error(mine, right) > tolerance:
            lines += [f"    {label}{row}" for row in worst_entries(mine, right, count=2)]
        else:
            lines.append(_("    {name} is right.").format(name=label))
    recognised = False
    for mistake, implementations in suspects("sgd_first_step").items():
        for implementation in implementations:
            candidate = np.concatenate([np.ravel(part) for part in implementation(X, y, num_classes, lr, reg)])
            if relative_error(actual, candidate) <= tolerance:
                lines.append(mistake.describe())
                recognised = True
                break
    if not recognised:
        if not np.any(actual):
            lines.append(_("W and b are still zero: is the update applied (W = W - lr * dW, or W -= lr * dW)?"))
        else:
            c = float(np.vdot(actual, expected) / np.vdot(expected, expected))
            if relative_error(actual, c * expected) <= 1e-6:
                hint = ""
                if abs(c - n) <= 1e-6 * n:
                    hint = _(" That is N = {n}: the step uses the gradient of a summed loss, or multiplies by the "
                             "batch size; the provided gradients are already means.").format(n=n)
                lines.append(_("Your step is {factor:.6g} times the gradient step.{hint}").format(factor=c, hint=hint))
            else:
                lines.append(_("Start from W = 0 and b = 0, take the mini-batches from a permutation of the rows, and "
                               "update with W -= lr * dW, b -= lr * db after every batch."))
    fail("\n".join(lines))


def _accuracy(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(reference.predict(W, b, X) == y))


def check_training_at_large_scores(
    train: Callable[..., object],
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    lr: float,
) -> None:
    """Two full-batch epochs whose second one meets huge scores: the loss there must be finite and right.

    ``train(X, y, num_classes, lr=lr, epochs=2, batch_size=N, reg=0, seed=0)`` takes one gradient step
    from zero weights (where the loss is log C), and the second epoch computes the loss at the
    weights of that step, whose scores ``X @ W + b`` the test makes huge (large features, a large
    step). ``history["loss"]`` must be ``[log C, the trusted loss at those weights]``. Training code
    that computes its own softmax without the shift gets nan there; with the batch's maximum, nan
    for rows far below it; with ``-log`` of a probability, inf. Which one is named is decided by
    experiment (:func:`_unstable_training`).
    """
    __tracebackhide__ = True

    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    kwargs = {"lr": lr, "epochs": 2, "batch_size": n, "reg": 0.0, "seed": 0}
    name = "train_softmax_regression"
    W1, b1 = reference.sgd_first_step(X, y, num_classes, lr)
    scores = np.abs(np.asarray(X, dtype=np.float64) @ W1 + b1)
    what = _describe_call(name, (X, y, num_classes), kwargs, ("X", "y", "num_classes"),
                          _("one full-batch step that takes the scores to {top:.0f}").format(top=scores.max()))
    outcome = call_student(train, X, y, num_classes, arg_names=("X", "y", "num_classes"), name=name, **kwargs)
    W, b, losses = _training_result(outcome.value, what, ((X.shape[1], num_classes), (num_classes,)),
                                    expected_dtype(X), 2)
    expected = [float(np.log(num_classes)), reference.softmax_regression_loss(W1, b1, X, y)]
    tolerance = max(1e-6, 100 * float(np.finfo(expected_dtype(X)).eps))
    if all(np.isfinite(losses)) and all(abs(a - e) <= tolerance * max(1.0, abs(e))
                                        for a, e in zip(losses, expected, strict=True)):
        return
    lines = [_("{what}: history['loss'] is {losses}; expected {expected}: the loss at zero weights, then the loss at "
               "the weights of the first step, where the scores reach {top:.0f}. The provided "
               "softmax_regression_loss_and_grad gives finite losses there: use it for every mini-batch.").format(
        what=what, losses=losses, expected=[round(e, 6) for e in expected], top=scores.max())]
    if not all(np.isfinite(losses)):
        lines += [m.describe() for m in _unstable_training(train, X, y, num_classes, kwargs, losses, what)]
    fail("\n".join(lines))


def _unstable_training(train: Callable[..., object], X: np.ndarray, y: np.ndarray, num_classes: int,
                       kwargs: Mapping[str, object], losses: list[float], what: str) -> list[Mistake]:
    """Which unstable softmax makes a training loss non-finite at large scores, found by experiment.

    The same two epochs on the first row alone: one gradient step from zero weights raises that
    row's own label to the highest score (by ``lr * |x|^2``), so there the loss is finite for a shift
    by the batch's maximum (the row's) and for the log of a probability (its label is the likely
    class), while an exp without the shift still overflows. If that run stays finite, the full
    batch's loss says which of the other two it is: nan or -inf for the batch's maximum (a row far
    below it underflows), +inf for the log of a probability (a confident wrong row).
    """
    from softgrad.mistakes import LOG_OF_PROBABILITY, SOFTMAX_GLOBAL_MAX, SOFTMAX_NO_MAX_SHIFT

    try:
        single = run_quietly(train, (X[:1], y[:1], num_classes), {**kwargs, "batch_size": 1})
        *_parameters, one_row = _training_result(single, what, ((X.shape[1], num_classes), (num_classes,)),
                                         expected_dtype(X), 2)
    except (Exception, AssertionError):  # noqa: BLE001 (the experiment only serves the diagnosis)
        return []
    W1, b1 = reference.sgd_first_step(X[:1], y[:1], num_classes, float(kwargs["lr"]))
    if not all(np.isfinite(one_row)):
        scores = np.asarray(X[:1], dtype=np.float64) @ W1 + b1
        return [SOFTMAX_NO_MAX_SHIFT] if np.max(np.abs(scores)) > 100 else []
    if np.isnan(losses).any() or np.isneginf(losses).any():
        return [SOFTMAX_GLOBAL_MAX]
    return [LOG_OF_PROBABILITY]


def check_training(
    train: Callable[..., object],
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    X_test: np.ndarray,
    y_test: np.ndarray,
    min_accuracy: float,
    max_final_loss: float | None,
    case: str,
    **kwargs: object,
) -> None:
    """Train with ``train(X, y, num_classes, **kwargs)`` and judge the result as a user would.

    The loss history must have one entry per epoch and go down (and end below
    ``max_final_loss``), and the accuracy on the held-out ``(X_test, y_test)``, computed with
    the course's trusted ``predict``, must reach ``min_accuracy``. Failures name the known
    mistake the symptoms point to: a rising loss (the update's sign), near-zero accuracy with
    predictions one class off (shifted labels), or a failure on sorted data that disappears
    when the course shuffles the data first (no shuffling).
    """
    __tracebackhide__ = True
    from softgrad.mistakes import LABELS_OFF_BY_ONE, NO_SHUFFLE, SGD_ASCENDS

    X, y = np.asarray(X), np.asarray(y)
    name = "train_softmax_regression"
    what = _describe_call(name, (X, y, num_classes), kwargs, ("X", "y", "num_classes"), case)
    outcome = call_student(train, X, y, num_classes, arg_names=("X", "y", "num_classes"), name=name, **kwargs)
    epochs = int(kwargs["epochs"])  # the tests always say how long to train
    W, b, losses = _training_result(outcome.value, what, ((X.shape[1], num_classes), (num_classes,)),
                                    expected_dtype(X), epochs)
    accuracy = _accuracy(W, b, X_test, y_test)
    if not all(np.isfinite(losses)):
        fail(_("{what}: the loss history contains nan or inf: {first}...").format(what=what, first=losses[:5]))
    problems = []
    if losses[-1] >= losses[0]:
        problems.append(_("the training loss did not go down: first epoch {first:.4g}, last {last:.4g}.").format(
            first=losses[0], last=losses[-1]))
    elif max_final_loss is not None and losses[-1] > max_final_loss:
        problems.append(_("the training loss ends at {last:.4g}; a correct implementation reaches well below "
                          "{limit:g} with these settings.").format(last=losses[-1], limit=max_final_loss))
    if accuracy < min_accuracy:
        problems.append(_("the accuracy on the held-out data is {accuracy:.3f}; a correct implementation reaches at "
                          "least {limit:g} with these settings.").format(accuracy=accuracy, limit=min_accuracy))
    if not problems:
        return
    # TRANSLATORS: the call, then what went wrong (one or two of the sentences above, joined by a space)
    lines = [_("{what}: {problems}").format(what=what, problems=" ".join(problems))]
    predictions = reference.predict(W, b, X_test)
    if losses[-1] > losses[0]:
        lines.append(SGD_ASCENDS.describe())
    elif max(np.mean(predictions == (y_test + 1) % num_classes),
             np.mean(predictions == (y_test - 1) % num_classes)) > 0.5:
        lines.append(LABELS_OFF_BY_ONE.describe())
    else:
        order = np.random.default_rng(12345).permutation(len(y))
        try:
            retry = _training_result(run_quietly(train, (X[order], y[order], num_classes), kwargs),
                                     what, ((X.shape[1], num_classes), (num_classes,)), expected_dtype(X), epochs)
            if _accuracy(retry[0], retry[1], X_test, y_test) >= min_accuracy:
                lines.append(_("With the same data shuffled once beforehand, your training reaches the accuracy: the "
                               "order of the data is the problem.") + "\n" + NO_SHUFFLE.describe())
        except (Exception, AssertionError):  # the retry is only for the diagnosis
            pass
    fail("\n".join(lines))


def check_deterministic(train: Callable[..., object], X: np.ndarray, y: np.ndarray, num_classes: int,
                        **kwargs: object) -> None:
    """The same seed must give the same weights, whatever NumPy's global random state; and
    another seed must give other weights (the seed decides the order of the mini-batches)."""
    __tracebackhide__ = True
    from softgrad.mistakes import NO_SHUFFLE, UNSEEDED_RANDOMNESS

    name = "train_softmax_regression"
    results = []
    for seed, global_seed in ((0, 1), (0, 2), (1, 1)):
        # Deliberately the legacy global state: code that wrongly uses it now sees other numbers.
        np.random.seed(global_seed)  # noqa: NPY002
        outcome = call_student(train, X, y, num_classes, arg_names=("X", "y", "num_classes"), name=name,
                               seed=seed, **kwargs)
        results.append(outcome.value)
    what = _describe_call(name, (X, y, num_classes), kwargs, ("X", "y", "num_classes"), "")
    same_seed = [np.concatenate([np.ravel(r[0]), np.ravel(r[1])]) for r in results]
    if not np.array_equal(same_seed[0], same_seed[1]):
        fail(_("{what}: two runs with seed=0 gave different weights (relative difference {error:.2e}).").format(
            what=what, error=relative_error(same_seed[0], same_seed[1])) + "\n" + UNSEEDED_RANDOMNESS.describe())
    if np.array_equal(same_seed[0], same_seed[2]):
        # Not shuffled at all, or shuffled by a generator that ignores the seed? Data sorted by
        # label tells them apart: shuffled training copes with it, unshuffled training does not.
        from softgrad.mistakes import SEED_IGNORED

        order = np.argsort(np.asarray(y), kind="stable")
        W_sorted, b_sorted = run_quietly(train, (np.asarray(X)[order], np.asarray(y)[order], num_classes),
                                          {"seed": 0, **kwargs})[:2]
        unsorted_accuracy = _accuracy(np.asarray(results[0][0]), np.asarray(results[0][1]), X, y)
        shuffles = _accuracy(np.asarray(W_sorted), np.asarray(b_sorted), X, y) >= unsorted_accuracy - 0.2
        fail(_("{what}: seed=0 and seed=1 gave identical weights, so the seed does not decide the order of the "
               "mini-batches.").format(what=what) + "\n" + (SEED_IGNORED if shuffles else NO_SHUFFLE).describe())


def check_sgd_loop(
    train: Callable[..., object],
    namespace: dict[str, object],
    helper: str,
    X: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    **kwargs: object,
) -> None:
    """Watch the training loop through the loss-and-gradient function it must call.

    ``namespace[helper]`` (the provided ``softmax_regression_loss_and_grad`` in the
    notebook's globals, which the student's code looks up at run time) is replaced for one
    call of ``train`` by a wrapper that records every mini-batch, then restored. The checks:
    ``ceil(N / batch_size)`` calls per epoch with batches of ``batch_size`` rows (the last
    one may be smaller); every row exactly once per epoch; a new order every epoch; ``reg``
    passed on; and ``history["loss"][e]`` the mean of epoch ``e``'s mini-batch losses.
    """
    if watched_only_in_kernel(train, "check_sgd_loop"):
        return  # the provided function is watched in the notebook run; the re-run's copy is elsewhere
    __tracebackhide__ = True
    from softgrad.mistakes import LAST_BATCH_DROPPED, ORDER_DRAWN_ONCE, REG_NOT_PASSED

    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    batch_size, epochs, reg = int(kwargs["batch_size"]), int(kwargs["epochs"]), float(kwargs["reg"])
    original = namespace.get(helper)
    if not callable(original):
        raise RuntimeError(f"the notebook has no function {helper}() to watch")
    calls: list[tuple[np.ndarray, float, float]] = []

    def recording(W, b, X_batch, y_batch, reg=0.0):
        loss, dW, db = original(W, b, X_batch, y_batch, reg)
        calls.append((np.array(X_batch, copy=True), float(reg), float(loss)))
        return loss, dW, db

    name = "train_softmax_regression"
    what = _describe_call(name, (X, y, num_classes), kwargs, ("X", "y", "num_classes"), "")
    namespace[helper] = recording
    try:
        outcome = call_student(train, X, y, num_classes, arg_names=("X", "y", "num_classes"), name=name, **kwargs)
    finally:
        namespace[helper] = original
    *_parameters, losses = _training_result(outcome.value, what, ((X.shape[1], num_classes), (num_classes,)),
                                    expected_dtype(X), epochs)
    per_epoch = -(-n // batch_size)
    if not calls:
        fail(_("{what} never called {helper}(): compute the loss and gradients of every mini-batch with it.").format(
            what=what, helper=helper))
    if len(calls) != epochs * per_epoch:
        sizes = [len(c[0]) for c in calls[:per_epoch + 1]]
        # TRANSLATORS: the four counts below are each written with their noun: "1 time", "3 times", "2 epochs", ...
        message = _("{what} called {helper}() {times}; {epochs} of {rows} in mini-batches of {batch_size} take "
                    "{calls} each, {total} in all. The first batch sizes: {sizes}.").format(
            what=what, helper=helper, times=ngettext("{count} time", "{count} times", len(calls)).format(
                count=len(calls)),
            epochs=ngettext("{count} epoch", "{count} epochs", epochs).format(count=epochs),
            rows=ngettext("{count} row", "{count} rows", n).format(count=n), batch_size=batch_size,
            calls=ngettext("{count} call", "{count} calls", per_epoch).format(count=per_epoch),
            total=epochs * per_epoch, sizes=sizes)
        if len(calls) == epochs * (n // batch_size) and n % batch_size:
            message += "\n" + LAST_BATCH_DROPPED.describe()
        fail(message)
    sizes = [len(c[0]) for c in calls[:per_epoch]]
    expected_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if sizes != expected_sizes:
        fail(_("{what}: the mini-batches of the first epoch have {sizes} rows; expected {expected}: consecutive "
               "slices of one permutation of the rows.").format(what=what, sizes=sizes, expected=expected_sizes))
    reference_rows = np.sort(X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel())
    for epoch in range(epochs):
        batches = calls[epoch * per_epoch:(epoch + 1) * per_epoch]
        rows = np.concatenate([c[0] for c in batches])
        rows = np.ascontiguousarray(rows, dtype=X.dtype)
        if not np.array_equal(np.sort(rows.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()),
                              reference_rows):
            fail(_("{what}: in epoch {epoch} the mini-batches did not contain every row of X exactly once; take "
                   "them from a permutation of the rows (rng.permutation(N)), not by sampling with "
                   "replacement.").format(what=what, epoch=epoch + 1))
        given = {c[1] for c in batches}
        if given != {reg}:
            fail(_("{what} passed reg = {given} to {helper}(); it was asked for reg = {reg}.").format(
                what=what, given=sorted(given), helper=helper, reg=reg) + "\n" + REG_NOT_PASSED.describe())
        mean_loss = float(np.mean([c[2] for c in batches]))
        if abs(losses[epoch] - mean_loss) > 1e-9 * max(1.0, abs(mean_loss)):
            fail(_("{what}: history['loss'][{epoch}] is {loss:.6g}, but the mean of that epoch's mini-batch losses "
                   "is {mean:.6g}: record the mean of the losses that {helper}() returned during the epoch.").format(
                what=what, epoch=epoch, loss=losses[epoch], mean=mean_loss, helper=helper))
    if epochs > 1 and all(np.array_equal(calls[e * per_epoch][0], calls[0][0]) for e in range(1, epochs)):
        fail(_("{what}: every epoch started with the same mini-batch.").format(what=what) + "\n"
             + ORDER_DRAWN_ONCE.describe())
