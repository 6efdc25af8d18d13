"""Mutants of ps2_jacobian: the Jacobian mistakes of COURSE_DESIGN section 6, and correct variants."""

from mutants import correct, wrong

NOTEBOOK = "jacobian.ipynb"

MUTANTS = [
    # ---- softmax_jacobian ---------------------------------------------------------------------
    wrong("jacobian_diagonal_only", "[jacobian-diagonal-only]", softmax_jacobian="""
        def softmax_jacobian(z):
            p = softmax(z)
            return p[..., :, None] * (1 - p[..., :, None]) * np.eye(p.shape[-1])
    """),
    wrong("jacobian_minus_outer_product", "[jacobian-off-diagonal-only]", softmax_jacobian="""
        def softmax_jacobian(z):
            p = softmax(z)
            return -p[..., :, None] * p[..., None, :]
    """),
    wrong("jacobian_zero_diagonal", "[jacobian-off-diagonal-only]", softmax_jacobian="""
        def softmax_jacobian(z):
            p = softmax(z)
            n = p.shape[-1]
            jac = -p[..., :, None] * p[..., None, :]
            jac[..., np.arange(n), np.arange(n)] = 0.0
            return jac
    """),
    wrong("jacobian_sign_flipped", "[jacobian-sign-flipped]", softmax_jacobian="""
        def softmax_jacobian(z):
            p = softmax(z)
            return p[..., :, None] * p[..., None, :] - p[..., :, None] * np.eye(p.shape[-1])
    """),
    wrong("jacobian_vector_only", "returned an array of shape", softmax_jacobian="""
        def softmax_jacobian(z):
            p = softmax(z)
            return np.diag(p) - np.outer(p, p)
    """),
    wrong("jacobian_shifts_in_place", "[mutates-input]", softmax_jacobian="""
        def softmax_jacobian(z):
            z -= np.max(z, axis=-1, keepdims=True)
            p = np.exp(z) / np.sum(np.exp(z), axis=-1, keepdims=True)
            return p[..., :, None] * (np.eye(p.shape[-1]) - p[..., None, :])
    """),
    wrong("jacobian_always_float64", "but its input has dtype float32", softmax_jacobian="""
        def softmax_jacobian(z):
            p = softmax(np.asarray(z, dtype=np.float64))
            return p[..., :, None] * (np.eye(p.shape[-1]) - p[..., None, :])
    """),
    # ---- softmax_vjp -----------------------------------------------------------------------------
    wrong("vjp_missing_inner_product", "[vjp-missing-inner-product]", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            return softmax(z, axis=axis) * g
    """),
    wrong("vjp_inner_product_over_batch", "[vjp-inner-product-over-batch]", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            p = softmax(z, axis=axis)
            return p * (g - np.sum(g * p))
    """),
    wrong("vjp_diagonal_only", "[jacobian-diagonal-only]", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            p = softmax(z, axis=axis)
            return g * p * (1 - p)
    """),
    wrong("vjp_sign_flipped", "[jacobian-sign-flipped]", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            p = softmax(z, axis=axis)
            return p * (np.sum(g * p, axis=axis, keepdims=True) - g)
    """),
    wrong("vjp_ignores_axis", "[wrong-axis]", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            p = softmax(z)
            return p * (g - np.sum(g * p, axis=-1, keepdims=True))
    """),
    wrong("vjp_inner_product_without_keepdims", "[missing-keepdims]", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            p = softmax(z, axis=axis)
            return p * (g - np.sum(g * p, axis=axis))
    """),
    wrong("vjp_builds_the_jacobian", "[vjp-builds-jacobian]", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            moved_z, moved_g = np.moveaxis(z, axis, -1), np.moveaxis(g, axis, -1)
            p = softmax(moved_z)
            jac = p[..., :, None] * (np.eye(p.shape[-1]) - p[..., None, :])
            return np.moveaxis(np.einsum("...i,...ij->...j", moved_g, jac), -1, axis)
    """),
    wrong("vjp_modifies_g_in_place", "[mutates-input]", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            p = softmax(z, axis=axis)
            g -= np.sum(g * p, axis=axis, keepdims=True)
            return p * g
    """),
    # ---- log_softmax_vjp ---------------------------------------------------------------------------
    wrong("log_vjp_transposed", "[log-softmax-vjp-transposed]", log_softmax_vjp="""
        def log_softmax_vjp(z, g, axis=-1):
            p = softmax(z, axis=axis)
            return g - np.sum(g * p, axis=axis, keepdims=True)
    """),
    wrong("log_vjp_through_the_untransposed_matrix", "[log-softmax-vjp-transposed]", log_softmax_vjp="""
        def log_softmax_vjp(z, g, axis=-1):
            p = np.moveaxis(softmax(z, axis=axis), axis, -1)
            g_last = np.moveaxis(g, axis, -1)
            K = np.eye(p.shape[-1], dtype=p.dtype) - p[..., None, :]
            return np.moveaxis(np.einsum("...ij,...j->...i", K, g_last), -1, axis)
    """),
    wrong("log_vjp_sign_flipped", "[jacobian-sign-flipped]", log_softmax_vjp="""
        def log_softmax_vjp(z, g, axis=-1):
            return softmax(z, axis=axis) * np.sum(g, axis=axis, keepdims=True) - g
    """),
    wrong("log_vjp_sum_on_the_last_axis", "[wrong-axis]", log_softmax_vjp="""
        def log_softmax_vjp(z, g, axis=-1):
            return g - softmax(z, axis=axis) * np.sum(g, axis=-1, keepdims=True)
    """),
    wrong("log_vjp_elementwise_instead_of_sum", None, log_softmax_vjp="""
        def log_softmax_vjp(z, g, axis=-1):
            return g - softmax(z, axis=axis) * g
    """),
    wrong("log_vjp_through_the_jacobian", "[vjp-builds-jacobian]", log_softmax_vjp="""
        def log_softmax_vjp(z, g, axis=-1):
            p = np.moveaxis(softmax(z, axis=axis), axis, -1)
            g_last = np.moveaxis(g, axis, -1)
            K = np.eye(p.shape[-1], dtype=p.dtype) - p[..., None, :]
            return np.moveaxis(np.einsum("...i,...ij->...j", g_last, K), -1, axis)
    """),
    wrong("log_vjp_own_unshifted_softmax", "[softmax-no-max-shift]", log_softmax_vjp="""
        def log_softmax_vjp(z, g, axis=-1):
            e = np.exp(z)
            return g - e / np.sum(e, axis=axis, keepdims=True) * np.sum(g, axis=axis, keepdims=True)
    """),
    # ---- correct variants -------------------------------------------------------------------------
    correct("jacobian_einsum", softmax_jacobian="""
        def softmax_jacobian(z):
            p = softmax(z)
            eye = np.eye(p.shape[-1], dtype=p.dtype)
            return np.einsum("...i,ij->...ij", p, eye) - np.einsum("...i,...j->...ij", p, p)
    """),
    correct("jacobian_python_loops", softmax_jacobian="""
        def softmax_jacobian(z):
            p = softmax(z)
            n = p.shape[-1]
            jac = np.empty(p.shape + (n,), dtype=p.dtype)
            for row in np.ndindex(p.shape[:-1]):
                for i in range(n):
                    for j in range(n):
                        delta = 1.0 if i == j else 0.0
                        jac[row + (i, j)] = p[row + (i,)] * (delta - p[row + (j,)])
            return jac
    """),
    correct("jacobian_apply_along_axis", softmax_jacobian="""
        def softmax_jacobian(z):
            p = softmax(z)
            return np.apply_along_axis(lambda row: np.diag(row) - np.outer(row, row), -1, p)
    """),
    correct("vjp_expanded", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            p = softmax(z, axis=axis)
            return g * p - p * np.sum(g * p, axis=axis, keepdims=True)
    """),
    correct("vjp_moveaxis_einsum", softmax_vjp="""
        def softmax_vjp(z, g, axis=-1):
            p = np.moveaxis(softmax(z, axis=axis), axis, -1)
            g_last = np.moveaxis(g, axis, -1)
            inner = np.einsum("...i,...i->...", g_last, p)[..., None]
            return np.moveaxis(p * (g_last - inner), -1, axis)
    """),
    correct("log_vjp_from_the_definition", log_softmax_vjp="""
        def log_softmax_vjp(z, g, axis=-1):
            shifted = z - np.max(z, axis=axis, keepdims=True)
            log_p = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
            return g - np.exp(log_p) * g.sum(axis=axis, keepdims=True)
    """),
]
