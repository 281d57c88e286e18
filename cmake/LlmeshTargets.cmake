# Helpers shared by every directory so each CMakeLists.txt stays a few lines long.

# llmesh_library(NAME DIR [DEPS ...]): a static library from DIR/src/*.cc with DIR/include public.
function(llmesh_library name)
  cmake_parse_arguments(ARG "" "DIR" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${ARG_DIR}/src/*.cc)
  if(NOT srcs)  # header-only so far
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${ARG_DIR}/include)
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${ARG_DIR}/include)
  target_compile_options(${name} PRIVATE ${LLMESH_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# llmesh_executable(NAME SOURCES... DEPS ...)
function(llmesh_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${LLMESH_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endfunction()

# llmesh_test(NAME SOURCES... DEPS ... LABELS ...): one gtest binary, each TEST a CTest test.
function(llmesh_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT;FIXTURES" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  # Lets a developer configure while a teammate's test file is still being
  # written; CI leaves it OFF, so a missing file is an error there.
  if(LLMESH_ALLOW_MISSING_TESTS)
    foreach(src ${ARG_SOURCES})
      if(NOT IS_ABSOLUTE ${src} AND NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${src})
        message(WARNING "skipping ${name}: ${src} missing")
        return()
      endif()
    endforeach()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${LLMESH_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    LLMESH_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    LLMESH_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared"
    LLMESH_BIN_DIR="${CMAKE_BINARY_DIR}/bin")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  set(fixture_props "")
  if(ARG_FIXTURES)  # a setup test (FIXTURES_SETUP) that must run first
    set(fixture_props FIXTURES_REQUIRED ${ARG_FIXTURES})
  endif()
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} ${fixture_props}
                       DISCOVERY_TIMEOUT 60)
endfunction()

# llmesh_server(NAME DIR DEPS ...): a service binary from DIR/server/*.cc.
function(llmesh_server name)
  cmake_parse_arguments(ARG "" "DIR" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${ARG_DIR}/server/*.cc)
  llmesh_executable(${name} SOURCES ${srcs} DEPS ${ARG_DEPS})
endfunction()
