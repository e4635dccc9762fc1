"""Device code of the Triton neuron kernels: the four kernels and the Triton functions they share.

Plain, undecorated functions: :mod:`.triton_kernels` decorates copies of them with
``triton.jit`` for the mode in force (compiled or interpreted), bound to a globals dict that holds
``tl`` and the decorated helpers. Importing this module needs no Triton: the ``tl.constexpr``
annotations stay unevaluated strings.
"""

from __future__ import annotations

from typing import Any

#: Bound only in the per-mode globals the kernels run in; here for readers and linters.
tl: Any = None

# ---------------------------------------------------------------------------------------------
# Kernels. ``ST`` is the storage dtype (x's), ``CT`` the compute dtype (float64 for float64, else
# float32). ``a.to(ST).to(CT)`` rounds to what PyTorch would have stored; it is a no-op when
# ST == CT. Every row pointer advances by N per step: no t * N product, so no 32-bit overflow and
# no dependence on how Triton specialises T and N.
#
# What a forward kernel and its backward's recompute pass share (lanes, scalars, the initial
# membrane, the charge, the reset, the quantiser) is written once, as Triton functions of ours,
# so both run the same expressions and the backward's H is exactly the forward's. Neither these
# nor the kernels are decorated here. A kernel finds a function it calls by name in its
# ``__globals__``: the compiler accepts only a JITFunction there, the interpreter re-executes the
# kernel's source in those globals and calls an InterpretedFunction, and triton.jit makes one or
# the other for the mode in force when it runs. One module global cannot serve both modes, so
# _kernels() binds copies of helpers and kernels to a globals dict of their own per mode, holding
# ``tl`` and the helpers as decorated for that mode.
#
# Triton's own library functions such as tl.zeros or tl.sum are not used: Triton decorates them
# once, when it is imported, and if that happened without TRITON_INTERPRET, the interpreter
# cannot call them. Hence tl.full for zeros, and per-neuron partial sums of d/d inv_tau reduced by
# PyTorch instead of a tl.sum per program.


def _lanes(N, BLOCK: tl.constexpr):
    """This program's neurons (int64 indices) and which of them exist."""
    lanes = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return lanes, lanes < N


def _membrane0(v0_ptr, lanes, mask, fill, HAS_V0: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr):
    """The membrane before step 0: v_init where given, else ``fill`` (v_rest; 0 for I-LIF)."""
    if HAS_V0:
        v = tl.load(v0_ptr + lanes, mask=mask, other=0.0).to(CT)
    else:
        v = tl.full([BLOCK], 0.0, CT) + fill
    return v


def _lif_params(prm_ptr, ST: tl.constexpr, CT: tl.constexpr):
    """``k`` (1/tau), v_rest and V_th as compute-dtype scalars, and v_rest and V_th rounded to x's
    dtype: the reset writes them as tensors of x's dtype (v_reset * S, V_th * S), while the charge
    and the fire test use them as float32/float64 scalars, as PyTorch does."""
    k = tl.load(prm_ptr)
    rest = tl.load(prm_ptr + 1)
    vth = tl.load(prm_ptr + 2)
    return k, rest, vth, rest.to(ST).to(CT), vth.to(ST).to(CT)


def _lif_charge(v, xt, k, rest, DECAY_INPUT: tl.constexpr, ST: tl.constexpr, CT: tl.constexpr):
    """The charged membrane H, in the reference's order, each op rounded to x's dtype."""
    if DECAY_INPUT:  # v + (x - (v - rest)) * k
        a = (v - rest).to(ST).to(CT)
        a = (xt - a).to(ST).to(CT)
        a = (a * k).to(ST).to(CT)
        h = (v + a).to(ST).to(CT)
    else:  # v - (v - rest) * k + x
        a = (v - rest).to(ST).to(CT)
        a = (a * k).to(ST).to(CT)
        a = (v - a).to(ST).to(CT)
        h = (a + xt).to(ST).to(CT)
    return h


def _lif_reset(h, fire, rest_s, vth_s, HARD: tl.constexpr, ST: tl.constexpr, CT: tl.constexpr):
    """The membrane after the spike ``fire`` of H: ``H (1 - S) + v_rest S`` (hard), or H - V_th
    where it fired (soft)."""
    if HARD:
        # The reference's arithmetic, not a select: an infinite H that fires gives
        # inf * 0 = NaN, and the membrane stays NaN as in the reference loop.
        s = tl.where(fire, 1.0, 0.0).to(CT)
        kept = (h * (1.0 - s)).to(ST).to(CT)
        v = (kept + (rest_s * s).to(ST).to(CT)).to(ST).to(CT)
    else:
        v = tl.where(fire, (h - vth_s).to(ST).to(CT), h)
    return v


def _ilif_charge(v, xt, beta, tau, TAU_CHARGE: tl.constexpr, TAU_RECIP: tl.constexpr, ST: tl.constexpr,
                 CT: tl.constexpr):
    """The charged membrane H, in the reference's order, each op rounded to x's dtype; ``tau``
    holds 1 / tau when TAU_RECIP (see _tau_recip)."""
    if TAU_CHARGE:  # v + (x - v) / tau
        a = (xt - v).to(ST).to(CT)
        if TAU_RECIP:
            a = (a * tau).to(ST).to(CT)
        else:
            a = (a / tau).to(ST).to(CT)
        h = (v + a).to(ST).to(CT)
    else:  # beta * v + x
        a = (beta * v).to(ST).to(CT)
        h = (a + xt).to(ST).to(CT)
    return h


def _ilif_spike(h, levels, MAGIC: tl.constexpr, ST: tl.constexpr, CT: tl.constexpr):
    """The integer spike of H: round(clamp(H, 0, levels))."""
    y = tl.minimum(tl.maximum(h, 0.0, propagate_nan=tl.PropagateNan.ALL), levels,
                   propagate_nan=tl.PropagateNan.ALL).to(ST).to(CT)
    # Round half to even: adding and subtracting 2^23 (2^52 in float64) leaves the nearest
    # integer, ties to even, for 0 <= y <= 2^22 (fused.MAX_LEVELS). No multiply is involved,
    # so there is nothing to contract, and Triton sets no reassociation flags to fold it.
    return ((y + MAGIC) - MAGIC).to(ST).to(CT)


def _lif_forward_kernel(
    x_ptr, v0_ptr, s_ptr, v_out_ptr, prm_ptr, T, N,
    HAS_V0: tl.constexpr, HARD: tl.constexpr, DECAY_INPUT: tl.constexpr,
    CT: tl.constexpr, BLOCK: tl.constexpr,
):
    ST = x_ptr.dtype.element_ty
    lanes, mask = _lanes(N, BLOCK)
    k, rest, vth, rest_s, vth_s = _lif_params(prm_ptr, ST, CT)
    v = _membrane0(v0_ptr, lanes, mask, rest_s, HAS_V0, CT, BLOCK)
    off = lanes
    for _ in range(T):
        xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
        h = _lif_charge(v, xt, k, rest, DECAY_INPUT, ST, CT)
        fire = (h - vth).to(ST).to(CT) >= 0.0
        # Via float32: the interpreter cannot convert a boolean to bfloat16.
        tl.store(s_ptr + off, tl.where(fire, 1.0, 0.0).to(ST), mask=mask)
        v = _lif_reset(h, fire, rest_s, vth_s, HARD, ST, CT)
        off += N
    tl.store(v_out_ptr + lanes, v.to(ST), mask=mask)


def _lif_backward_kernel(
    gs_ptr, gv_ptr, x_ptr, v0_ptr, h_ptr, gx_ptr, gv0_ptr, gk_ptr, prm_ptr, T, N,
    HAS_GS: tl.constexpr, HAS_GV: tl.constexpr, HAS_V0: tl.constexpr, HARD: tl.constexpr,
    DECAY_INPUT: tl.constexpr, DETACH: tl.constexpr, SURROGATE: tl.constexpr,
    GRAD_K: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr,
):
    ST = x_ptr.dtype.element_ty
    lanes, mask = _lanes(N, BLOCK)
    k, rest, vth, rest_s, vth_s = _lif_params(prm_ptr, ST, CT)
    q0 = tl.load(prm_ptr + 3)
    q1 = tl.load(prm_ptr + 4)
    v0 = _membrane0(v0_ptr, lanes, mask, rest_s, HAS_V0, CT, BLOCK)

    # Pass 1: the forward recurrence again, keeping H of every step (exactly the forward's H, so
    # the fire decisions below are the forward's spikes).
    v = v0
    off = lanes
    for _ in range(T):
        xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
        h = _lif_charge(v, xt, k, rest, DECAY_INPUT, ST, CT)
        tl.store(h_ptr + off, h.to(ST), mask=mask)
        fire = (h - vth).to(ST).to(CT) >= 0.0
        v = _lif_reset(h, fire, rest_s, vth_s, HARD, ST, CT)
        off += N

    # Pass 2: back in time; gv holds dL/dV_t on entry to step t and dL/dV_{t-1} on exit.
    if HAS_GV:
        gv = tl.load(gv_ptr + lanes, mask=mask, other=0.0).to(CT)
    else:
        gv = tl.full([BLOCK], 0.0, CT)
    gk = tl.full([BLOCK], 0.0, CT)
    off -= N
    h = tl.load(h_ptr + off, mask=mask, other=0.0).to(CT)
    for i in range(T):
        # H_{t-1} is next step's H, and V_{t-1} = reset(H_{t-1}) is what d H_t / d k needs:
        # one load per step serves both. At t = 0 the membrane before is v0.
        has_prev = i < T - 1
        h_prev = tl.load(h_ptr + off - N, mask=mask & has_prev, other=0.0).to(CT)
        z = (h - vth).to(ST).to(CT)
        fire = z >= 0.0
        if HAS_GS:
            ds = tl.load(gs_ptr + off, mask=mask, other=0.0).to(CT)
        else:
            ds = tl.full([BLOCK], 0.0, CT)
        if HARD:
            # V = H (1 - S) + rest S: dV/dH = 1 - S, dV/dS = rest - H.
            if not DETACH:
                ds += gv * (rest_s - h)
            gh_direct = tl.where(fire, 0.0, gv)
        else:
            # V = H - V_th S.
            if not DETACH:
                ds -= gv * vth_s
            gh_direct = gv
        if SURROGATE == 0:  # sigmoid, q0 = alpha
            sig = 1.0 / (1.0 + tl.exp(-q0 * z))
            sg = q0 * sig * (1.0 - sig)
        elif SURROGATE == 1:  # atan, q0 = alpha / 2, q1 = pi / 2 * alpha
            u = q1 * z
            sg = q0 / (1.0 + u * u)
        elif SURROGATE == 2:  # rectangle, q0 = width / 2, q1 = 1 / width
            sg = tl.where(tl.abs(z) < q0, q1, 0.0)
        else:  # straight-through window [q0, q1]
            sg = tl.where((z >= q0) & (z <= q1), 1.0, 0.0)
        gh = gh_direct + ds * sg
        if DECAY_INPUT:
            tl.store(gx_ptr + off, (gh * k).to(ST), mask=mask)
        else:
            tl.store(gx_ptr + off, gh.to(ST), mask=mask)
        if GRAD_K:
            v_prev = _lif_reset(h_prev, (h_prev - vth).to(ST).to(CT) >= 0.0, rest_s, vth_s, HARD, ST, CT)
            v_prev = tl.where(has_prev, v_prev, v0)
            if DECAY_INPUT:
                xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
                gk += gh * (xt - (v_prev - rest))
            else:
                gk -= gh * (v_prev - rest)
        gv = gh * (1.0 - k)
        h = h_prev
        off -= N
    tl.store(gv0_ptr + lanes, gv.to(ST), mask=mask)
    if GRAD_K:
        # One partial sum per neuron (over time), summed across neurons in float64 on the host.
        tl.store(gk_ptr + lanes, gk, mask=mask)


def _ilif_forward_kernel(
    x_ptr, v0_ptr, s_ptr, v_out_ptr, prm_ptr, T, N,
    HAS_V0: tl.constexpr, TAU_CHARGE: tl.constexpr, TAU_RECIP: tl.constexpr,
    MAGIC: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr,
):
    ST = x_ptr.dtype.element_ty
    lanes, mask = _lanes(N, BLOCK)
    levels = tl.load(prm_ptr)
    beta = tl.load(prm_ptr + 1)
    tau = tl.load(prm_ptr + 2)  # 1 / tau when TAU_RECIP
    v = _membrane0(v0_ptr, lanes, mask, 0.0, HAS_V0, CT, BLOCK)
    off = lanes
    for _ in range(T):
        xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
        h = _ilif_charge(v, xt, beta, tau, TAU_CHARGE, TAU_RECIP, ST, CT)
        s = _ilif_spike(h, levels, MAGIC, ST, CT)
        tl.store(s_ptr + off, s.to(ST), mask=mask)
        v = (h - s).to(ST).to(CT)
        off += N
    tl.store(v_out_ptr + lanes, v.to(ST), mask=mask)


def _ilif_backward_kernel(
    gs_ptr, gv_ptr, x_ptr, v0_ptr, h_ptr, gx_ptr, gv0_ptr, prm_ptr, T, N,
    HAS_GS: tl.constexpr, HAS_GV: tl.constexpr, HAS_V0: tl.constexpr,
    TAU_CHARGE: tl.constexpr, TAU_RECIP: tl.constexpr, DETACH: tl.constexpr,
    MAGIC: tl.constexpr, CT: tl.constexpr, BLOCK: tl.constexpr,
):
    ST = x_ptr.dtype.element_ty
    lanes, mask = _lanes(N, BLOCK)
    levels = tl.load(prm_ptr)
    beta = tl.load(prm_ptr + 1)
    tau = tl.load(prm_ptr + 2)
    inv_tau = tl.load(prm_ptr + 3)
    v = _membrane0(v0_ptr, lanes, mask, 0.0, HAS_V0, CT, BLOCK)

    off = lanes
    for _ in range(T):
        xt = tl.load(x_ptr + off, mask=mask, other=0.0).to(CT)
        h = _ilif_charge(v, xt, beta, inv_tau if TAU_RECIP else tau, TAU_CHARGE, TAU_RECIP, ST, CT)
        tl.store(h_ptr + off, h.to(ST), mask=mask)
        s = _ilif_spike(h, levels, MAGIC, ST, CT)
        v = (h - s).to(ST).to(CT)
        off += N

    if HAS_GV:
        gv = tl.load(gv_ptr + lanes, mask=mask, other=0.0).to(CT)
    else:
        gv = tl.full([BLOCK], 0.0, CT)
    for _ in range(T):
        off -= N
        h = tl.load(h_ptr + off, mask=mask, other=0.0).to(CT)
        inside = (h >= 0.0) & (h <= levels)  # the straight-through window of the quantiser
        if HAS_GS:
            ds = tl.load(gs_ptr + off, mask=mask, other=0.0).to(CT)
        else:
            ds = tl.full([BLOCK], 0.0, CT)
        if not DETACH:
            ds -= gv  # V = H - S
        gh = gv + tl.where(inside, ds, 0.0)
        if TAU_CHARGE:
            g_in = gh * inv_tau
            tl.store(gx_ptr + off, g_in.to(ST), mask=mask)
            gv = gh - g_in
        else:
            tl.store(gx_ptr + off, gh.to(ST), mask=mask)
            gv = gh * beta
    tl.store(gv0_ptr + lanes, gv.to(ST), mask=mask)


HELPERS = (_lanes, _membrane0, _lif_params, _lif_charge, _lif_reset, _ilif_charge, _ilif_spike)
KERNELS = {"lif_forward": _lif_forward_kernel, "lif_backward": _lif_backward_kernel,
            "ilif_forward": _ilif_forward_kernel, "ilif_backward": _ilif_backward_kernel}
