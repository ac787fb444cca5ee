"""Software prefetch for the Numba kernels: a hint that memory will be read soon.

The sample side streams each chunk's history from memory, then computes on it from the cache
(see :mod:`dmft.kernels`); left alone, the memory would stay idle while the chunk computes.
:func:`prefetch_row` asks for the next chunk's rows meanwhile, so that both proceed at once.
A prefetch changes no value (results are bit-identical with and without it); only the time
moves.  It is an intrinsic (LLVM's ``llvm.prefetch`` over the row's cache lines), which costs
next to nothing to compile.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_LINE = 64                  # bytes per cache line


@intrinsic
def prefetch_row(typingctx, row, n):
    """Prefetch into the L2 cache (LLVM locality 2) the cache lines of ``row[:n]``, a
    contiguous 1-D array, ``n`` at most its length; a no-op where the target has no prefetch
    instruction."""
    if not (isinstance(row, types.Array) and row.ndim == 1 and row.layout == "C"
            and isinstance(n, types.Integer)):
        return None
    sig = types.void(row, n)

    def codegen(context, builder, signature, args):
        aryty, nty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        count = context.cast(builder, args[1], nty, types.intp)
        step = max(1, _LINE // context.get_abi_sizeof(context.get_data_type(aryty.dtype)))
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        zero = context.get_constant(types.intp, 0)
        with cgutils.for_range_slice(builder, zero, count, context.get_constant(types.intp, step),
                                     intp=zero.type) as (q, _):
            ptr = builder.gep(ary.data, [q])
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(2), i32(1)])
        return context.get_dummy_value()
    return sig, codegen
