# Checks that the kernel objects compiled for one instruction set (autodiff/ops/isa/*.cpp,
# optim/isa/*.cpp with -mavx2 or -mavx512f) define no weak or unique symbol outside that set's
# namespaces (ad::kernels::<set>, ad::detail::isa_<set>, ad::detail::reduction::isa_<set>). Such a
# symbol (an inline function or a template instantiated with the project's or the standard
# library's types) has copies in the portable objects too, and the linker keeps one copy for all
# callers: if it kept the AVX-512 one, a CPU without AVX-512 would stop with an illegal instruction.
# Usage: cmake -DNM=nm -DISA=avx512 -DOBJECTS="a.o|b.o" -P isa_symbols.cmake
string(REPLACE "|" ";" objects "${OBJECTS}")
set(bad "")
foreach(object IN LISTS objects)
  execute_process(COMMAND ${NM} -C --defined-only ${object} OUTPUT_VARIABLE listing
                  RESULT_VARIABLE failed)
  if(failed)
    message(FATAL_ERROR "isa_symbols: ${NM} failed on ${object}")
  endif()
  string(REPLACE "\n" ";" lines "${listing}")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[0-9a-f]* [WVu] (.*)$")
      set(name "${CMAKE_MATCH_1}")
      # DW.ref.__gxx_personality_v0: the exception-handling personality's data reference. A name
      # nm cannot demangle (the thread pool's per-loop trampolines, instantiated with a kernel's
      # lambda, run past the demangler's limits) still names the set's namespace in its mangled
      # form (8isa_avx2, 7kernels4avx2): it is unique to the set as well.
      if(NOT name MATCHES "ad::kernels::${ISA}::" AND NOT name MATCHES "::isa_${ISA}::"
         AND NOT name MATCHES "[0-9]isa_${ISA}" AND NOT name MATCHES "7kernels[0-9]+${ISA}"
         AND NOT name MATCHES "^DW\\.ref\\.")
        string(APPEND bad "  ${name}\n")
      endif()
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "isa_symbols: the ${ISA} kernels define shared weak symbols:\n${bad}")
endif()
list(LENGTH objects count)
message(STATUS "isa_symbols: ${count} ${ISA} objects define no shared weak symbol")
