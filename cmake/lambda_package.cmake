# lambda_package.cmake — builds the lean, portable function binary that
# `peerless package-function` puts in function.zip: this source tree
# configured again under ${CMAKE_BINARY_DIR}/lambda with
# -DPL_FUNCTION_ONLY=ON -DPL_DNNL=OFF -DPL_NATIVE=OFF -DPL_FN_MARCH=x86-64-v3
# (AVX2/FMA: every x86-64 Lambda host has it; -march=native could SIGILL
# there). The CLI finds it through PL_LAMBDA_BINARY. Included at the end of
# CMakeLists.txt when PL_LAMBDA_PACKAGE is ON.
include(ExternalProject)
set(PL_LAMBDA_DIR ${CMAKE_BINARY_DIR}/lambda)
ExternalProject_Add(peerless_lambda
  SOURCE_DIR ${CMAKE_SOURCE_DIR}
  BINARY_DIR ${PL_LAMBDA_DIR}
  PREFIX ${CMAKE_BINARY_DIR}/lambda-prefix
  CMAKE_ARGS -DCMAKE_BUILD_TYPE=Release -DPL_FUNCTION_ONLY=ON -DPL_DNNL=OFF -DPL_NATIVE=OFF
             -DPL_SANITIZE=OFF -DPL_FN_MARCH=x86-64-v3
  INSTALL_COMMAND ""
  BUILD_ALWAYS ON)
set_property(SOURCE src/cli/function.c APPEND PROPERTY COMPILE_DEFINITIONS
             PL_LAMBDA_BINARY="${PL_LAMBDA_DIR}/peerless")
