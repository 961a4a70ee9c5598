# function_only.cmake — the lean Lambda function binary (-DPL_FUNCTION_ONLY=ON):
# `peerless function` only (src/lambda/main.c), without oneDNN, RabbitMQ or
# libmicrohttpd, so that the deployment package stays small
# (`peerless package-function`, docs/aws.md). Included by CMakeLists.txt after
# the common options; the normal build runs this configuration as the
# ExternalProject `peerless_lambda` (cmake/lambda_package.cmake) with
# -DPL_DNNL=OFF -DPL_NATIVE=OFF -DPL_FN_MARCH=x86-64-v3.
#
# The binary links libraries --as-needed (the Eigen shim needs nothing from
# libstdc++; libgcc is static: Debian 12's libgcc_s needs GLIBC_2.35 and
# Amazon Linux 2023 has 2.34), is stripped, and finds the libraries the package bundles in lib/ next to it
# (DT_RPATH $ORIGIN/lib, which also covers their own dependencies and wins
# over Lambda's LD_LIBRARY_PATH).
set(PL_FN_MARCH "" CACHE STRING "-march of the function binary (empty: compiler default)")
if(PL_FN_MARCH)
  add_compile_options(-march=${PL_FN_MARCH})
endif()

find_path(CJSON_INCLUDE_DIR cjson/cJSON.h REQUIRED)
find_library(CJSON_LIBRARY cjson REQUIRED)
find_package(CURL REQUIRED)
find_package(OpenSSL REQUIRED)

# The library modules the function uses; the linker keeps only the objects
# it needs (the peer's transports and the platform are not compiled here).
file(GLOB_RECURSE PL_FN_LIB_SOURCES CONFIGURE_DEPENDS
     src/core/*.c src/backend/*.c src/nn/*.c src/optim/*.c src/data/*.c src/io/*.c src/comm/*.c
     src/store/*.c src/faas/function*.c src/peer/shard.c src/peer/split.c)
pl_backend_sources(PL_FN_LIB_SOURCES)
add_library(peerless_fnlib STATIC ${PL_FN_LIB_SOURCES})
target_include_directories(peerless_fnlib PUBLIC include PRIVATE src ${PL_BACKEND_INCLUDE_DIRS} ${CJSON_INCLUDE_DIR})
target_link_libraries(peerless_fnlib PUBLIC ${PL_BACKEND_LIBRARIES} ${CJSON_LIBRARY} ZLIB::ZLIB CURL::libcurl
                      OpenSSL::Crypto OpenMP::OpenMP_C Threads::Threads m)

add_executable(peerless_function src/lambda/main.c src/cli/function.c src/cli/args.c)
set_target_properties(peerless_function PROPERTIES OUTPUT_NAME peerless)
target_include_directories(peerless_function PRIVATE src ${CJSON_INCLUDE_DIR})
target_compile_definitions(peerless_function PRIVATE PL_FN_MARCH="${PL_FN_MARCH}"
                           PL_FN_VERSION="${PROJECT_VERSION}")
target_link_libraries(peerless_function PRIVATE peerless_fnlib)
target_link_options(peerless_function PRIVATE -Wl,--as-needed -static-libgcc -s
                    -Wl,--disable-new-dtags)
set_target_properties(peerless_function PROPERTIES BUILD_RPATH "\$ORIGIN/lib")

# The fast backend of exactly this build against the reference backend.
enable_testing()
foreach(name test_fast test_nn)
  add_executable(${name} tests/${name}.c tests/testutil.c)
  target_include_directories(${name} PRIVATE src tests ${CJSON_INCLUDE_DIR})
  target_link_libraries(${name} PRIVATE peerless_fnlib)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 600 ENVIRONMENT "PEERLESS_TEST_TMP=${CMAKE_BINARY_DIR}/testtmp")
endforeach()
