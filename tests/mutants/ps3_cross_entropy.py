"""Mutants of ps3_cross_entropy: the cross-entropy mistakes of COURSE_DESIGN section 6, and correct variants."""

from mutants import correct, wrong

NOTEBOOK = "cross_entropy.ipynb"

_TARGET_LINES = """\
            target = np.asarray(target)
            if np.issubdtype(target.dtype, np.integer):
                q = np.zeros(logits.shape)
                q[np.arange(n), target] = 1.0
            else:
                q = target
"""


def with_target(source: str) -> str:
    """Replace the line `...TARGET...` by the lines that turn `target` into a distribution q."""
    return source.replace("            ...TARGET...\n", _TARGET_LINES)


def regression(dlogits: str = "cross_entropy_grad(logits, y)", dW: str = "X.T @ dlogits + reg * W",
               db: str = "np.sum(dlogits, axis=0)") -> str:
    """A softmax_regression_loss_and_grad (on the notebook's own cross_entropy) with the given
    expressions for the logits' gradient, dW and db: each wrong mutant changes exactly one."""
    return f"""
        def softmax_regression_loss_and_grad(W, b, X, y, reg=0.0):
            logits = X @ W + b
            loss = cross_entropy(logits, y) + 0.5 * reg * np.sum(W * W)
            dlogits = {dlogits}
            return loss, {dW}, {db}
    """


MUTANTS = [
    # ---- cross_entropy --------------------------------------------------------------------------
    wrong("ce_sum_not_mean", "[ce-sum-not-mean]", cross_entropy=with_target("""
        def cross_entropy(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            q = (1.0 - label_smoothing) * q + label_smoothing / c
            return -np.sum(q * log_softmax(logits))
    """)),
    wrong("ce_log_of_softmax", "[log-of-probability]", cross_entropy=with_target("""
        def cross_entropy(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            q = (1.0 - label_smoothing) * q + label_smoothing / c
            return -np.sum(q * np.log(softmax(logits))) / n
    """)),
    wrong("ce_without_the_shift", "[softmax-no-max-shift]", cross_entropy=with_target("""
        def cross_entropy(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            q = (1.0 - label_smoothing) * q + label_smoothing / c
            log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
            return -np.sum(q * log_p) / n
    """)),
    wrong("ce_smoothing_over_other_classes", "[label-smoothing-c-minus-1]", cross_entropy=with_target("""
        def cross_entropy(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            q = (1.0 - label_smoothing) * q + label_smoothing * (1.0 - q) / (c - 1)
            return -np.sum(q * log_softmax(logits)) / n
    """)),
    wrong("ce_ignores_label_smoothing", "[label-smoothing-ignored]", cross_entropy=with_target("""
        def cross_entropy(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            return -np.sum(q * log_softmax(logits)) / n
    """)),
    wrong("ce_soft_targets_argmax", "[soft-targets-collapsed]", cross_entropy="""
        def cross_entropy(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            labels = np.asarray(target)
            if labels.ndim == 2:
                labels = np.argmax(labels, axis=1)
            q = np.eye(c)[labels]
            q = (1.0 - label_smoothing) * q + label_smoothing / c
            return -np.sum(q * log_softmax(logits)) / n
    """),
    # ---- cross_entropy_grad ---------------------------------------------------------------------
    wrong("grad_without_1_over_n", "[ce-grad-missing-1-over-n]", cross_entropy_grad=with_target("""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            q = (1.0 - label_smoothing) * q + label_smoothing / c
            return (softmax(logits) - q).astype(logits.dtype)
    """)),
    wrong("grad_sign_flipped", "[ce-grad-sign-flipped]", cross_entropy_grad=with_target("""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            q = (1.0 - label_smoothing) * q + label_smoothing / c
            return ((q - softmax(logits)) / n).astype(logits.dtype)
    """)),
    wrong("grad_integer_labels_as_one_hot", "[ce-integer-labels-as-onehot]", cross_entropy_grad="""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n = logits.shape[0]
            target = np.asarray(target)
            q = target[:, None] if target.ndim == 1 else target
            return (softmax(logits) - q) / n
    """),
    wrong("grad_smoothing_over_other_classes", "[label-smoothing-c-minus-1]", cross_entropy_grad=with_target("""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            q = (1.0 - label_smoothing) * q + label_smoothing * (1.0 - q) / (c - 1)
            return ((softmax(logits) - q) / n).astype(logits.dtype)
    """)),
    wrong("grad_soft_targets_argmax", "[soft-targets-collapsed]", cross_entropy_grad="""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            labels = np.asarray(target)
            if labels.ndim == 2:
                labels = np.argmax(labels, axis=1)
            q = (1.0 - label_smoothing) * np.eye(c)[labels] + label_smoothing / c
            return ((softmax(logits) - q) / n).astype(logits.dtype)
    """),
    wrong("grad_modifies_logits", "[mutates-input]", cross_entropy_grad=with_target("""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            logits -= np.max(logits, axis=1, keepdims=True)
            p = np.exp(logits) / np.sum(np.exp(logits), axis=1, keepdims=True)
            ...TARGET...
            q = (1.0 - label_smoothing) * q + label_smoothing / c
            return ((p - q) / n).astype(logits.dtype)
    """)),
    wrong("grad_through_probabilities", "[ce-grad-through-probabilities]", cross_entropy_grad=with_target("""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            q = (1.0 - label_smoothing) * q + label_smoothing / c
            p = softmax(logits)
            g = -q / p
            return (p * (g - np.sum(g * p, axis=1, keepdims=True)) / n).astype(logits.dtype)
    """)),
    wrong("grad_smooths_integer_labels_only", "[label-smoothing-ignored]", cross_entropy_grad=with_target("""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            ...TARGET...
            if np.asarray(target).ndim == 1:
                q = (1.0 - label_smoothing) * q + label_smoothing / c
            return ((softmax(logits) - q) / n).astype(logits.dtype)
    """)),
    # ---- softmax_regression_loss_and_grad ------------------------------------------------------
    wrong("regression_without_1_over_n", "[ce-grad-missing-1-over-n]", softmax_regression_loss_and_grad=regression(
        dlogits="softmax(logits)\n            dlogits[np.arange(len(y)), y] -= 1.0")),
    wrong("regression_dw_transposed", "[dw-transposed]", softmax_regression_loss_and_grad=regression(
        dW="dlogits.T @ X + reg * W.T")),
    wrong("regression_reg_gradient_doubled", "[reg-gradient-factor-two]", softmax_regression_loss_and_grad=regression(
        dW="X.T @ dlogits + 2 * reg * W")),
    wrong("regression_reg_gradient_missing", "[reg-gradient-missing]", softmax_regression_loss_and_grad=regression(
        dW="X.T @ dlogits")),
    wrong("regression_integer_labels_as_one_hot", "[ce-integer-labels-as-onehot]",
          softmax_regression_loss_and_grad=regression(dlogits="(softmax(logits) - y[:, None]) / len(y)")),
    wrong("regression_db_per_example", "is an array of shape", softmax_regression_loss_and_grad=regression(
        db="dlogits")),
    # ---- correct variants ---------------------------------------------------------------------
    correct("ce_logsumexp_minus_gathered_logit", cross_entropy="""
        def cross_entropy(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            m = np.max(logits, axis=1, keepdims=True)
            lse = m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
            target = np.asarray(target)
            if np.issubdtype(target.dtype, np.integer):
                nll = lse[:, 0] - logits[np.arange(n), target]
            else:
                nll = np.sum(target * (lse - logits), axis=1)
            uniform = np.mean(lse - logits, axis=1)
            return float(np.mean((1.0 - label_smoothing) * nll + label_smoothing * uniform))
    """),
    correct("ce_eye_one_hot", cross_entropy="""
        def cross_entropy(logits, target, label_smoothing=0.0):
            c = logits.shape[1]
            target = np.asarray(target)
            q = np.eye(c)[target] if target.ndim == 1 else target
            q = (1.0 - label_smoothing) * q + label_smoothing / c
            return -np.mean(np.sum(q * log_softmax(logits), axis=1))
    """),
    correct("grad_subtract_at_labels", cross_entropy_grad="""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            grad = softmax(logits)
            target = np.asarray(target)
            if target.ndim == 1:
                grad[np.arange(n), target] -= 1.0 - label_smoothing
                grad -= label_smoothing / c
            else:
                grad -= ((1.0 - label_smoothing) * target + label_smoothing / c).astype(grad.dtype)
            return grad / n
    """),
    correct("grad_python_loop_over_examples", cross_entropy_grad="""
        def cross_entropy_grad(logits, target, label_smoothing=0.0):
            n, c = logits.shape
            target = np.asarray(target)
            grad = np.empty_like(logits, dtype=softmax(logits).dtype)
            for i in range(n):
                p = softmax(logits[i])
                q = np.eye(c)[target[i]] if target.ndim == 1 else target[i]
                q = (1.0 - label_smoothing) * q + label_smoothing / c
                grad[i] = (p - q) / n
            return grad
    """),
    correct("regression_einsum", softmax_regression_loss_and_grad="""
        def softmax_regression_loss_and_grad(W, b, X, y, reg=0.0):
            logits = np.einsum("nd,dc->nc", X, W) + b
            n = X.shape[0]
            dlogits = softmax(logits)
            dlogits[np.arange(n), y] -= 1.0
            dlogits /= n
            loss = -np.mean(log_softmax(logits)[np.arange(n), y]) + 0.5 * reg * np.sum(W**2)
            return loss, np.einsum("nd,nc->dc", X, dlogits) + reg * W, dlogits.sum(axis=0)
    """),
]
