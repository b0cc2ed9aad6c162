cmake_minimum_required(VERSION 3.25)
# The layering test must fail where an arrow is broken: copies the layers into a scratch tree,
# plants one wrong include at a time (an upward one inside node/, a project header in angle
# brackets from crdt/ into gossip/, another folder's internals, a new node/ folder with no
# rule), and expects layering_test.cmake to refuse each, naming the file. The real tree must
# pass.
#
# Run: cmake -DSOURCE_DIR=... -DSCRATCH=... -P layering_selftest.cmake
set(script ${CMAKE_CURRENT_LIST_DIR}/layering_test.cmake)
execute_process(COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${SOURCE_DIR} -P ${script}
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the real tree fails the layering test:\n${err}")
endif()

# plant(FILE LINE EXPECTED): FILE relative to the tree, created if missing.
function(plant file line expected)
  file(REMOVE_RECURSE ${SCRATCH})
  foreach(layer crdt gossip node include)
    file(COPY ${SOURCE_DIR}/${layer} DESTINATION ${SCRATCH})
  endforeach()
  file(APPEND ${SCRATCH}/${file} "\n${line}\n")
  execute_process(COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${SCRATCH} -P ${script}
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  string(REGEX REPLACE "[ \n]+" " " err "${err}")
  if(rc EQUAL 0 OR NOT err MATCHES "${expected}")
    message(FATAL_ERROR "planted '${line}' in ${file}: the layering test did not refuse it "
                        "as expected ('${expected}'); it said: ${err}")
  endif()
  message(STATUS "refused as expected: '${line}' in ${file}")
endfunction()

plant(node/store/keys.c "#include \"node/api/server.h\""
      "node/store/keys.c: includes \"node/api/server.h\"")
plant(gossip/swim.c "#include <crdt/internal.h>" "gossip/swim.c: includes \"crdt/internal.h\"")
plant(node/daemon/daemon.c "#include \"node/api/internal.h\"" "another folder's internals")
plant(node/trust/identity.c "#include \"gossip/engine.h\"" "node/trust/identity.c: includes")
plant(node/unruled/index.c "#include \"node/store/store.h\"" "node/unruled/: a folder with no rule")
file(REMOVE_RECURSE ${SCRATCH})
