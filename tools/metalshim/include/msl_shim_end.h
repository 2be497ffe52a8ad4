// msl_shim_end.h: include after the .metal kernels; removes the MSL keyword
// macros of metal_stdlib so ordinary C++ (std::thread ...) compiles again.
#undef device
#undef thread
#undef kernel
#undef constant
#undef threadgroup
