# conv_backend.cmake — which implementation the fast backend's convolutions
# and GEMM use (src/backend/fast_conv.h):
#   PL_DNNL=ON   oneDNN (fast_conv.c), the default;
#   PL_DNNL=OFF  im2col/col2im + Eigen's SGEMM (fast_conv_gemm.c, gemm_eigen.cc;
#                Debian libeigen3-dev, header-only), used by the lean Lambda
#                function (cmake/function_only.cmake).
# Sets PL_BACKEND_INCLUDE_DIRS and PL_BACKEND_LIBRARIES, and defines
# pl_backend_sources(VAR) which drops the other implementation from the
# source list VAR (and adds the C++ shim when PL_DNNL is OFF).
if(PL_DNNL)
  find_path(DNNL_INCLUDE_DIR dnnl.h REQUIRED)
  find_library(DNNL_LIBRARY dnnl REQUIRED)
  set(PL_BACKEND_INCLUDE_DIRS ${DNNL_INCLUDE_DIR})
  set(PL_BACKEND_LIBRARIES ${DNNL_LIBRARY})
else()
  enable_language(CXX)
  find_package(Eigen3 3.3 REQUIRED NO_MODULE)
  get_target_property(PL_EIGEN_INCLUDE Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
  set(PL_BACKEND_INCLUDE_DIRS "")
  set(PL_BACKEND_LIBRARIES "")
  # Eigen as a system include (its headers are not held to our warnings);
  # no exceptions, RTTI or static guards: the shim is one GEMM behind a C
  # entry point and needs nothing from libstdc++ (gemm_eigen.cc).
  # -Wno-maybe-uninitialized: GCC 12 reports the deliberately undefined
  # vectors of its own AVX-512 intrinsics (avx512fintrin.h) under -O1 + ASan.
  # The im2col / scatter loops copy short rows: keep them loops, not libc calls.
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/backend/fast_conv_gemm.c PROPERTIES COMPILE_OPTIONS
    "-fno-tree-loop-distribute-patterns")
  set_source_files_properties(${CMAKE_SOURCE_DIR}/src/backend/gemm_eigen.cc PROPERTIES COMPILE_OPTIONS
    "-isystem;${PL_EIGEN_INCLUDE};-fno-exceptions;-fno-rtti;-fno-threadsafe-statics;-Wno-maybe-uninitialized;-std=c++14")
endif()

function(pl_backend_sources var)
  set(srcs ${${var}})
  if(PL_DNNL)
    list(FILTER srcs EXCLUDE REGEX "src/backend/fast_conv_gemm\\.c$")
  else()
    list(FILTER srcs EXCLUDE REGEX "src/backend/fast_conv\\.c$")
    list(APPEND srcs ${CMAKE_SOURCE_DIR}/src/backend/gemm_eigen.cc)
  endif()
  set(${var} ${srcs} PARENT_SCOPE)
endfunction()
