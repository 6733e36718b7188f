# Helpers that keep every module's CMakeLists.txt to a few lines.

# For work in progress in a shared tree: skip (with a message) any target
# whose sources do not all exist yet, instead of failing the configure.
option(SIGIL_PARTIAL_TREE "Skip targets with missing sources" OFF)

# Sets <out> to TRUE when every source exists (or partial trees are off).
function(sigil_sources_present out name)
  set(${out} TRUE PARENT_SCOPE)
  if(NOT SIGIL_PARTIAL_TREE)
    return()
  endif()
  foreach(src ${ARGN})
    if(NOT IS_ABSOLUTE ${src})
      set(src ${CMAKE_CURRENT_SOURCE_DIR}/${src})
    endif()
    if(NOT EXISTS ${src})
      message(STATUS "sigil: skipping ${name}: ${src} does not exist yet")
      set(${out} FALSE PARENT_SCOPE)
      return()
    endif()
  endforeach()
endfunction()

# sigil_library(<name> SRCS <files...> DEPS <targets...>)
function(sigil_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  sigil_sources_present(present ${name} ${ARG_SRCS})
  if(NOT present)
    return()
  endif()
  add_library(${name} STATIC ${ARG_SRCS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# sigil_test(<name> SRCS <files...> DEPS <targets...>)
# One gtest binary per module; every test case is registered with ctest.
function(sigil_test name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  sigil_sources_present(present ${name} ${ARG_SRCS})
  if(NOT present)
    return()
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    PROPERTIES ENVIRONMENT "SIGIL_BIN_DIR=${CMAKE_BINARY_DIR}/bin;SIGIL_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
    DISCOVERY_TIMEOUT 60)
endfunction()

# sigil_binary(<name> SRCS <files...> DEPS <targets...>) — lands in build/bin/.
function(sigil_binary name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  sigil_sources_present(present ${name} ${ARG_SRCS})
  if(NOT present)
    return()
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

# sigil_bench(<name> SRCS <files...> DEPS <targets...>) — lands in build/bench/.
function(sigil_bench name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  sigil_sources_present(present ${name} ${ARG_SRCS})
  if(NOT present)
    return()
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
endfunction()

# sigil_proto_library(<name> PROTOS <files relative to proto/...> [GRPC] DEPS <targets...>)
# Generates C++ (and gRPC stubs with GRPC) into the build tree, mirroring the
# proto/ layout, so sources include e.g. "spire/api/types/entry.pb.h".
function(sigil_proto_library name)
  cmake_parse_arguments(ARG "GRPC" "" "PROTOS;DEPS" ${ARGN})
  set(proto_root ${CMAKE_SOURCE_DIR}/proto)
  set(out_root ${CMAKE_BINARY_DIR}/proto)
  file(MAKE_DIRECTORY ${out_root})
  set(srcs)
  foreach(p ${ARG_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" base ${p})
    set(outs ${out_root}/${base}.pb.cc ${out_root}/${base}.pb.h)
    set(cmd_args --proto_path=${proto_root} --cpp_out=${out_root})
    if(ARG_GRPC)
      list(APPEND outs ${out_root}/${base}.grpc.pb.cc ${out_root}/${base}.grpc.pb.h)
      list(APPEND cmd_args --grpc_out=${out_root}
           --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>)
    endif()
    add_custom_command(
      OUTPUT ${outs}
      COMMAND protobuf::protoc ${cmd_args} ${proto_root}/${p}
      DEPENDS ${proto_root}/${p} protobuf::protoc
      COMMENT "protoc ${p}")
    list(APPEND srcs ${outs})
  endforeach()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${out_root})
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf ${ARG_DEPS})
  if(ARG_GRPC)
    target_link_libraries(${name} PUBLIC gRPC::grpc++)
  endif()
  target_compile_options(${name} PRIVATE -w)
endfunction()
