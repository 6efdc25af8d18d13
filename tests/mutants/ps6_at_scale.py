"""Mutants of ps6_at_scale: online log-sum-exp and chunked cross-entropy, wrong and right."""

from mutants import correct, wrong

NOTEBOOK = "at_scale.ipynb"


def online(update: str, first: str = "m, s = chunk_max, np.sum(np.exp(chunk - chunk_max[..., None]), axis=-1)") -> str:
    """An online_logsumexp whose per-chunk update (after the first chunk) is ``update``."""
    return f"""
        def online_logsumexp(chunks):
            m = s = None
            for chunk in chunks:
                chunk = np.asarray(chunk, dtype=np.float64)
                chunk_max = np.max(chunk, axis=-1)
                if m is None:
                    {first}
                    continue
                {update}
            return m + np.log(s)
    """


def chunked(*, lse_update: str = "s = s * np.exp(m - new_m) + np.sum(np.exp(z - new_m[:, None]), axis=1)",
            probabilities: str = "np.exp(h @ W_chunk - lse[:, None])",
            onehot: str = "G[rows[here], target[here] - start] -= 1.0",
            scale: str = "G /= n", dh: str = "dh += G @ W_chunk.T", finish: str = "return loss, dh, dW") -> str:
    """A chunked_linear_cross_entropy built from the solution's steps, with one of them replaced."""
    return f"""
        def chunked_linear_cross_entropy(h, W, target, chunk_size):
            n, vocabulary = h.shape[0], W.shape[1]
            rows = np.arange(n)
            m = np.full(n, -np.inf, dtype=h.dtype)
            s = np.zeros(n, dtype=h.dtype)
            target_logit = np.zeros(n, dtype=h.dtype)
            for start in range(0, vocabulary, chunk_size):
                stop = min(start + chunk_size, vocabulary)
                z = h @ W[:, start:stop]
                new_m = np.maximum(m, np.max(z, axis=1))
                {lse_update}
                m = new_m
                here = (target >= start) & (target < stop)
                target_logit[here] = z[rows[here], target[here] - start]
            lse = m + np.log(s)
            loss = float(np.mean(lse - target_logit))
            dh, dW = np.zeros_like(h), np.zeros_like(W)
            for start in range(0, vocabulary, chunk_size):
                stop = min(start + chunk_size, vocabulary)
                W_chunk = W[:, start:stop]
                here = (target >= start) & (target < stop)
                G = {probabilities}
                {onehot}
                {scale}
                dW[:, start:stop] = h.T @ G
                {dh}
            {finish}
    """


# Two passes over the chunks (the maximum, then the shifted sum); ``keep`` goes first.
TWO_PASSES = """
        def online_logsumexp(chunks):
            {keep}
            m = None
            for chunk in chunks:
                m = np.max(chunk, axis=-1) if m is None else np.maximum(m, np.max(chunk, axis=-1))
            s = np.zeros_like(m)
            for chunk in chunks:
                s = s + np.sum(np.exp(chunk - m[..., None]), axis=-1)
            return m + np.log(s)
    """


MUTANTS = [
    # ---- online_logsumexp -----------------------------------------------------------------------
    wrong("online_sum_not_rescaled", "[online-sum-not-rescaled]", online_logsumexp=online(
        "new_m = np.maximum(m, chunk_max)\n"
        "                s = s + np.sum(np.exp(chunk - new_m[..., None]), axis=-1)\n"
        "                m = new_m")),
    wrong("online_first_max_kept", "[online-max-not-updated]", online_logsumexp=online(
        "s = s + np.sum(np.exp(chunk - m[..., None]), axis=-1)")),
    wrong("online_without_shift", "[logsumexp-no-shift]", online_logsumexp="""
        def online_logsumexp(chunks):
            total = 0.0
            for chunk in chunks:
                total = total + np.sum(np.exp(chunk), axis=-1)
            return np.log(total)
    """),
    wrong("online_two_loops", "[chunks-read-twice]", online_logsumexp=TWO_PASSES.format(keep="")),
    wrong("online_indexes_the_first_chunk", "[chunks-read-twice]", online_logsumexp="""
        def online_logsumexp(chunks):
            m = np.max(chunks[0], axis=-1)
            s = np.sum(np.exp(chunks[0] - m[..., None]), axis=-1)
            for chunk in chunks[1:]:
                new_m = np.maximum(m, np.max(chunk, axis=-1))
                s = s * np.exp(m - new_m) + np.sum(np.exp(chunk - new_m[..., None]), axis=-1)
                m = new_m
            return m + np.log(s)
    """),
    wrong("online_concatenates", "[materialises-full-logits]", online_logsumexp="""
        def online_logsumexp(chunks):
            z = np.concatenate(list(chunks), axis=-1)
            m = np.max(z, axis=-1)
            return m + np.log(np.sum(np.exp(z - m[..., None]), axis=-1))
    """),
    # the same two passes over a list: the generator is read once, but every chunk is held at once
    wrong("online_lists_the_chunks", "[materialises-full-logits]",
          online_logsumexp=TWO_PASSES.format(keep="chunks = list(chunks)")),
    wrong("online_shifts_chunks_in_place", "[mutates-input]", online_logsumexp="""
        def online_logsumexp(chunks):
            m = s = None
            for chunk in chunks:
                chunk_max = np.max(chunk, axis=-1)
                new_m = chunk_max if m is None else np.maximum(m, chunk_max)
                chunk -= new_m[..., None]  # saves a temporary, but edits the caller's array
                np.exp(chunk, out=chunk)
                s = np.sum(chunk, axis=-1) if s is None else s * np.exp(m - new_m) + np.sum(chunk, axis=-1)
                m = new_m
            return m + np.log(s)
    """),
    # ---- chunked_linear_cross_entropy ----------------------------------------------------------
    wrong("chunked_sum_not_rescaled", "[online-sum-not-rescaled]", chunked_linear_cross_entropy=chunked(
        lse_update="s = s + np.sum(np.exp(z - new_m[:, None]), axis=1)")),
    wrong("chunked_softmax_per_chunk", "[chunk-local-softmax]", chunked_linear_cross_entropy=chunked(
        probabilities="np.exp(h @ W_chunk - np.max(h @ W_chunk, axis=1, keepdims=True))\n"
                      "                G /= np.sum(G, axis=1, keepdims=True)")),
    wrong("chunked_dh_overwritten", "[dh-not-accumulated]", chunked_linear_cross_entropy=chunked(
        dh="dh = G @ W_chunk.T")),
    wrong("chunked_target_not_offset", "[target-not-offset]", chunked_linear_cross_entropy=chunked(
        onehot="G -= np.arange(stop - start)[None, :] == target[:, None]")),
    wrong("chunked_without_1_over_n", "[ce-grad-missing-1-over-n]", chunked_linear_cross_entropy=chunked(
        scale="pass")),
    wrong("chunked_full_logits", "[materialises-full-logits]", chunked_linear_cross_entropy="""
        def chunked_linear_cross_entropy(h, W, target, chunk_size):
            n = h.shape[0]
            logits = h @ W
            m = np.max(logits, axis=1, keepdims=True)
            p = np.exp(logits - m)
            s = np.sum(p, axis=1, keepdims=True)
            loss = float(np.mean(m[:, 0] + np.log(s[:, 0]) - logits[np.arange(n), target]))
            G = p / s
            G[np.arange(n), target] -= 1.0
            G /= n
            return loss, G @ W.T, h.T @ G
    """),
    wrong("chunked_float64_gradients", "but its input has dtype float32", chunked_linear_cross_entropy=chunked(
        finish="return loss, dh.astype(np.float64), dW.astype(np.float64)")),
    # ---- correct variants ---------------------------------------------------------------------
    correct("online_running_logaddexp", online_logsumexp="""
        def online_logsumexp(chunks):
            total = None
            for chunk in chunks:
                m = np.max(chunk, axis=-1)
                shift = np.where(np.isneginf(m), 0.0, m)  # a masked row: every term is 0
                with np.errstate(divide="ignore"):
                    part = m + np.log(np.sum(np.exp(chunk - shift[..., None]), axis=-1))
                total = part if total is None else np.logaddexp(total, part)
            return total
    """),
    correct("online_pairs_and_a_combine", online_logsumexp="""
        def factor(old, new):  # exp(old - new), and 0 for a summary of masked entries only
            return np.where(np.isneginf(old), 0.0, np.exp(np.where(np.isneginf(old), 0.0, old - new)))

        def combine(a, b):
            m = np.maximum(a[0], b[0])
            return m, a[1] * factor(a[0], m) + b[1] * factor(b[0], m)

        def online_logsumexp(chunks):
            state = None
            for chunk in chunks:
                m = np.max(chunk, axis=-1)
                part = (m, np.sum(np.exp(chunk - np.where(np.isneginf(m), 0.0, m)[..., None]), axis=-1))
                state = part if state is None else combine(state, part)
            with np.errstate(divide="ignore"):
                return state[0] + np.log(state[1])
    """),
    correct("chunked_reuses_online_logsumexp", chunked_linear_cross_entropy="""
        def chunked_linear_cross_entropy(h, W, target, chunk_size):
            n, vocabulary = h.shape[0], W.shape[1]
            starts = range(0, vocabulary, chunk_size)
            lse = online_logsumexp(h @ W[:, i:i + chunk_size] for i in starts)
            picked = np.sum(h * W[:, target].T, axis=1)  # the target logits, (N, D) memory
            loss = float(np.mean(lse - picked))
            dh, dW = np.zeros_like(h), np.zeros_like(W)
            for i in starts:
                columns = np.arange(i, min(i + chunk_size, vocabulary))
                G = (np.exp(h @ W[:, columns[0]:columns[-1] + 1] - lse[:, None])
                     - (columns[None, :] == target[:, None])) / n
                G = G.astype(h.dtype)
                dW[:, columns[0]:columns[-1] + 1] = h.T @ G
                dh += G @ W[:, columns[0]:columns[-1] + 1].T
            return loss, dh, dW
    """),
]
