"""Mutants of ps1_softmax: the mistakes of COURSE_DESIGN section 6 for chapter 1, and correct variants."""

from mutants import correct, wrong

NOTEBOOK = "softmax.ipynb"

MUTANTS = [
    # ---- softmax: overflow and the max trick -------------------------------------------------
    wrong("softmax_no_max_shift", "[softmax-no-max-shift]", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z)
            return exps / np.sum(exps, axis=axis, keepdims=True)
    """),
    wrong("softmax_no_shift_row_loop", "[softmax-no-max-shift]", softmax="""
        def softmax(z, axis=-1):
            moved = np.moveaxis(np.asarray(z), axis, -1)
            out = np.empty(moved.shape, dtype=np.result_type(moved.dtype, np.float16))
            for index in np.ndindex(moved.shape[:-1]):
                row = np.exp(moved[index])
                out[index] = row / row.sum()
            return np.moveaxis(out, -1, axis)
    """),
    wrong("softmax_global_max", "[global-max-shift]", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z - z.max())
            return exps / exps.sum(axis=axis, keepdims=True)
    """),
    wrong("softmax_clip_50", "[clip-logits]", softmax="""
        def softmax(z, axis=-1):
            clipped = np.clip(z, -50, 50)
            exps = np.exp(clipped)
            return exps / np.sum(exps, axis=axis, keepdims=True)
    """),
    wrong("softmax_clip_then_shift", "[clip-logits]", softmax="""
        def softmax(z, axis=-1):
            z = np.clip(z, -100.0, 100.0)
            exps = np.exp(z - np.max(z, axis=axis, keepdims=True))
            return exps / np.sum(exps, axis=axis, keepdims=True)
    """),
    wrong("softmax_in_place_shift", "[mutates-input]", softmax="""
        def softmax(z, axis=-1):
            z -= np.max(z, axis=axis, keepdims=True)
            np.exp(z, out=z)
            return z / np.sum(z, axis=axis, keepdims=True)
    """),
    wrong("softmax_shift_by_mean", "[shift-not-by-max]", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z - np.mean(z, axis=axis, keepdims=True))
            return exps / np.sum(exps, axis=axis, keepdims=True)
    """),
    wrong("softmax_denominator_epsilon", "[denominator-epsilon]", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z - np.max(z, axis=axis, keepdims=True))
            return exps / (np.sum(exps, axis=axis, keepdims=True) + 1e-7)
    """),
    # ---- softmax: axes and broadcasting ------------------------------------------------------
    wrong("softmax_axis0_hardcoded", "[wrong-axis]", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z - np.max(z, axis=0, keepdims=True))
            return exps / np.sum(exps, axis=0, keepdims=True)
    """),
    wrong("softmax_ignores_axis", "[wrong-axis]", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z - np.max(z, axis=-1, keepdims=True))
            return exps / np.sum(exps, axis=-1, keepdims=True)
    """),
    wrong("softmax_normalises_whole_array", "[wrong-axis]", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z - np.max(z, axis=axis, keepdims=True))
            return exps / exps.sum()
    """),
    wrong("softmax_sum_without_keepdims", "[missing-keepdims]", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z - np.max(z, axis=axis, keepdims=True))
            return exps / np.sum(exps, axis=axis)
    """),
    # ---- softmax: the contract ---------------------------------------------------------------
    wrong("softmax_always_float64", "but its input has dtype float32", softmax="""
        def softmax(z, axis=-1):
            z = np.asarray(z, dtype=np.float64)
            exps = np.exp(z - np.max(z, axis=axis, keepdims=True))
            return exps / np.sum(exps, axis=axis, keepdims=True)
    """),
    wrong("softmax_returns_list", "returned a list", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z - np.max(z, axis=axis, keepdims=True))
            return (exps / np.sum(exps, axis=axis, keepdims=True)).tolist()
    """),
    wrong("softmax_forgets_return", "returned None", softmax="""
        def softmax(z, axis=-1):
            exps = np.exp(z - np.max(z, axis=axis, keepdims=True))
            probabilities = exps / np.sum(exps, axis=axis, keepdims=True)
    """),
    # ---- log_softmax -------------------------------------------------------------------------
    wrong("log_softmax_log_of_softmax", "[log-of-softmax]", log_softmax="""
        def log_softmax(z, axis=-1):
            return np.log(softmax(z, axis=axis))
    """),
    wrong("log_softmax_no_shift", "[logsumexp-no-shift]", log_softmax="""
        def log_softmax(z, axis=-1):
            return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
    """),
    wrong("log_softmax_shift_not_added_back", "[logsumexp-shift-not-added-back]", log_softmax="""
        def log_softmax(z, axis=-1):
            m = np.max(z, axis=axis, keepdims=True)
            return z - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    """),
    wrong("log_softmax_global_max", "[global-max-shift]", log_softmax="""
        def log_softmax(z, axis=-1):
            shifted = z - np.max(z)
            return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    """),
    wrong("log_softmax_in_place", "[mutates-input]", log_softmax="""
        def log_softmax(z, axis=-1):
            z -= np.max(z, axis=axis, keepdims=True)
            z -= np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
            return z
    """),
    # ---- logsumexp ---------------------------------------------------------------------------
    wrong("logsumexp_no_shift", "[logsumexp-no-shift]", logsumexp="""
        def logsumexp(z, axis=-1):
            return np.log(np.sum(np.exp(z), axis=axis))
    """),
    wrong("logsumexp_shift_not_added_back", "[logsumexp-shift-not-added-back]", logsumexp="""
        def logsumexp(z, axis=-1):
            m = np.max(z, axis=axis, keepdims=True)
            return np.log(np.sum(np.exp(z - m), axis=axis))
    """),
    wrong("logsumexp_global_max", "[global-max-shift]", logsumexp="""
        def logsumexp(z, axis=-1):
            m = np.max(z)
            return m + np.log(np.sum(np.exp(z - m), axis=axis))
    """),
    wrong("logsumexp_ignores_axis", "[wrong-axis]", logsumexp="""
        def logsumexp(z, axis=-1):
            m = np.max(z, axis=-1, keepdims=True)
            return m[..., 0] + np.log(np.sum(np.exp(z - m), axis=-1))
    """),
    wrong("logsumexp_keeps_dims", "keepdims=True was used", logsumexp="""
        def logsumexp(z, axis=-1):
            m = np.max(z, axis=axis, keepdims=True)
            return m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    """),
    wrong("logsumexp_max_broadcast_without_keepdims", "[missing-keepdims]", logsumexp="""
        def logsumexp(z, axis=-1):
            m = np.max(z, axis=axis)
            return m + np.log(np.sum(np.exp(z - m), axis=axis))
    """),
    wrong("log_softmax_max_without_keepdims", "[missing-keepdims]", log_softmax="""
        def log_softmax(z, axis=-1):
            shifted = z - np.max(z, axis=axis)
            return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    """),
    # ---- correct variants: other ways to get it right -----------------------------------------
    correct("softmax_via_logsumexp", softmax="""
        def softmax(z, axis=-1):
            m = np.max(z, axis=axis, keepdims=True)
            lse = m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
            return np.exp(z - lse)
    """),
    correct("softmax_python_row_loop", softmax="""
        import math

        def softmax(z, axis=-1):
            z = np.asarray(z)
            dtype = z.dtype if np.issubdtype(z.dtype, np.floating) else np.float64
            moved = np.moveaxis(z, axis, -1)
            out = np.empty(moved.shape, dtype=dtype)
            for index in np.ndindex(moved.shape[:-1]):
                row = [float(v) for v in moved[index]]
                top = max(row)
                exps = [math.exp(v - top) for v in row]
                total = sum(exps)
                out[index] = [e / total for e in exps]
            return np.moveaxis(out, -1, axis)
    """),
    correct("softmax_einsum_normaliser", softmax="""
        def softmax(z, axis=-1):
            moved = np.moveaxis(z, axis, -1)
            exps = np.exp(moved - moved.max(axis=-1)[..., None])
            totals = np.einsum("...i->...", exps)
            return np.moveaxis(exps / totals[..., None], -1, axis)
    """),
    correct("log_softmax_from_own_logsumexp", log_softmax="""
        def log_softmax(z, axis=-1):
            return z - np.expand_dims(logsumexp(z, axis=axis), axis)
    """),
    # Right values, but NumPy warns (log(0) inside np.where evaluates both branches): warnings
    # never cost points, wrong values do. (The guard is the smallest *normal* number: the log
    # of a subnormal probability has lost digits, which the float16 test would rightly catch.)
    correct("log_softmax_where_guard_that_warns", log_softmax="""
        def log_softmax(z, axis=-1):
            p = softmax(z, axis=axis)
            shifted = z - np.max(z, axis=axis, keepdims=True)
            direct = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
            return np.where(p > np.finfo(p.dtype).tiny, np.log(p), direct).astype(direct.dtype)
    """),
    correct("logsumexp_logaddexp_reduce", logsumexp="""
        def logsumexp(z, axis=-1):
            z = np.asarray(z)
            if not np.issubdtype(z.dtype, np.floating):
                z = z.astype(np.float64)
            return np.logaddexp.reduce(z, axis=axis)
    """),
    correct("logsumexp_max_then_expand_dims", logsumexp="""
        def logsumexp(z, axis=-1):
            m = z.max(axis=axis)
            return m + np.log(np.exp(z - np.expand_dims(m, axis)).sum(axis=axis))
    """),
]
