"""Mutants of ps4_numpy_training: training-loop mistakes, and correct variants."""

from mutants import correct, wrong

NOTEBOOK = "training.ipynb"

# The argument checks of a correct solution, shared by the training mutants that are wrong
# elsewhere (so that each mutant has exactly one mistake).
_CHECKS = """\
            X, y = np.asarray(X), np.asarray(y)
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D, got shape {X.shape}")
            if y.ndim != 1 or len(y) != len(X) or not np.issubdtype(y.dtype, np.integer):
                raise ValueError("y must hold one integer label per row of X")
            if not (isinstance(num_classes, int) and num_classes >= 2):
                raise ValueError("num_classes must be an integer of at least 2")
            if y.min() < 0 or y.max() >= num_classes:
                raise ValueError(f"labels in y must lie in [0, {num_classes})")
            if not lr > 0:
                raise ValueError("lr must be positive")
            if not (isinstance(epochs, int) and epochs >= 1):
                raise ValueError("epochs must be at least 1")
            if not (isinstance(batch_size, int) and batch_size >= 1):
                raise ValueError("batch_size must be at least 1")
            if not reg >= 0:
                raise ValueError("reg must not be negative")
"""


def training(body: str, checks: str = _CHECKS) -> str:
    """A train_softmax_regression whose loop is `body` (indented 12 spaces), after the checks."""
    return ("""
        def train_softmax_regression(X, y, num_classes, lr=0.5, epochs=30, batch_size=64, reg=1e-4, seed=0):
""" + checks + body)


_LOOP = """\
            n, d = X.shape
            W, b = np.zeros((d, num_classes), dtype=X.dtype), np.zeros(num_classes, dtype=X.dtype)
            rng = np.random.default_rng(seed)
            history = {"loss": []}
            for _ in range(epochs):
                order = ORDER
                losses = []
                for start in range(0, n, batch_size):
                    batch = order[start:start + batch_size]
                    loss, dW, db = softmax_regression_loss_and_grad(W, b, X[batch], LABELS, reg)
                    UPDATE
                    losses.append(loss)
                history["loss"].append(float(np.mean(losses)))
            return W, b, history
"""


def loop(order: str = "rng.permutation(n)", labels: str = "y[batch]",
         update: str = "W -= lr * dW\n                    b -= lr * db") -> str:
    return _LOOP.replace("ORDER", order).replace("LABELS", labels).replace("UPDATE", update)


MUTANTS = [
    # ---- predict ---------------------------------------------------------------------------------
    wrong("predict_argmax_over_examples", "[predict-wrong-axis]", predict="""
        def predict(W, b, X):
            return np.argmax(X @ W + b, axis=0)
    """),
    wrong("predict_python_loop", "[python-loop-over-rows]", predict="""
        def predict(W, b, X):
            labels = np.empty(len(X), dtype=int)
            for i, row in enumerate(X):
                labels[i] = np.argmax(row @ W + b)
            return labels
    """),
    wrong("predict_returns_scores", "labels are integers", predict="""
        def predict(W, b, X):
            scores = X @ W + b
            return scores.max(axis=1)
    """),
    # ---- train_softmax_regression ----------------------------------------------------------
    wrong("train_gradient_ascent", "[sgd-ascends]", train_softmax_regression=training(
        loop(update="W += lr * dW\n                    b += lr * db"))),
    wrong("train_without_shuffling", "[no-shuffle]", train_softmax_regression=training(
        loop(order="np.arange(n)"))),
    wrong("train_global_random_state", "[unseeded-randomness]", train_softmax_regression=training(
        loop(order="np.random.permutation(n)"))),
    wrong("train_labels_off_by_one", "[labels-off-by-one]", train_softmax_regression=training(
        loop(labels="(y[batch] + 1) % num_classes"))),
    wrong("train_step_times_batch_size", "times the gradient step", train_softmax_regression=training(
        loop(update="W -= lr * dW * len(batch)\n                    b -= lr * db * len(batch)"))),
    wrong("train_without_argument_checks", "did not raise", train_softmax_regression=training(
        loop(), checks="            X, y = np.asarray(X), np.asarray(y)\n")),
    wrong("train_vague_error_messages", "does not mention", train_softmax_regression=training(
        loop(), checks=_CHECKS.replace('raise ValueError("lr must be positive")',
                                       'raise ValueError("invalid input")'))),
    wrong("train_history_per_batch", "one number per epoch", train_softmax_regression=training(
        loop().replace('history["loss"].append(float(np.mean(losses)))',
                       'history["loss"].extend(float(v) for v in losses)'))),
    wrong("train_random_start", "Start from W = 0", train_softmax_regression=training(
        loop().replace("W, b = np.zeros((d, num_classes), dtype=X.dtype), np.zeros(num_classes, dtype=X.dtype)",
                       "W = 0.01 * np.random.default_rng(seed).normal(size=(d, num_classes))\n"
                       "            b = np.zeros(num_classes, dtype=X.dtype)"))),
    wrong("train_standardises_x_in_place", "[mutates-input]", train_softmax_regression=training(
        loop(), checks=_CHECKS + "            X -= X.mean(axis=0)\n")),
    wrong("train_one_order_for_all_epochs", "[order-drawn-once]", train_softmax_regression=training(
        loop(order="first_order").replace("history = {\"loss\": []}",
                                          "history = {\"loss\": []}\n            first_order = rng.permutation(n)"))),
    wrong("train_drops_the_last_batch", "[last-batch-dropped]", train_softmax_regression=training(
        loop().replace("batch = order[start:start + batch_size]",
                       "batch = order[start:start + batch_size]\n"
                       "                    if len(batch) < batch_size:\n"
                       "                        continue"))),
    wrong("train_ignores_reg", "[reg-not-passed]", train_softmax_regression=training(
        loop().replace("X[batch], y[batch], reg)", "X[batch], y[batch])"))),
    wrong("train_fixed_generator", "[seed-ignored]", train_softmax_regression=training(
        loop().replace("rng = np.random.default_rng(seed)", "rng = np.random.default_rng(0)"))),
    wrong("predict_apply_along_axis", "[python-loop-over-rows]", predict="""
        def predict(W, b, X):
            return np.apply_along_axis(np.argmax, 1, X @ W + b)
    """),
    # ---- correct variants ---------------------------------------------------------------------
    correct("predict_through_probabilities", predict="""
        def predict(W, b, X):
            scores = X @ W + b
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
            return np.argmax(p / p.sum(axis=1, keepdims=True), axis=1)
    """),
    correct("train_choice_without_replacement", train_softmax_regression=training(
        loop(order="rng.choice(n, size=n, replace=False)"))),
    correct("train_shuffle_in_place_and_split", train_softmax_regression=training("""\
            n, d = X.shape
            W, b = np.zeros((d, num_classes), dtype=X.dtype), np.zeros(num_classes, dtype=X.dtype)
            rng = np.random.default_rng(seed)
            history = {"loss": []}
            for _ in range(epochs):
                order = np.arange(n)
                rng.shuffle(order)
                epoch_losses = []
                for batch in np.array_split(order, np.arange(batch_size, n, batch_size)):
                    loss, dW, db = softmax_regression_loss_and_grad(W, b, X[batch], y[batch], reg)
                    W = W - lr * dW
                    b = b - lr * db
                    epoch_losses.append(loss)
                history["loss"].append(np.mean(epoch_losses))
            return W, b, history
""")),
]
