# Keeps the layering of DESIGN.md section 1 honest (the linker would only catch calls): the
# CRDT kernel (crdt/) and the gossip protocol core (gossip/engine.*, swim.*) include
# no ZeroMQ, czmq, RocksDB or libsodium header. Only a transport file beside the engine may touch sockets.
file(GLOB_RECURSE files ${SOURCE_DIR}/crdt/*.c ${SOURCE_DIR}/crdt/*.h
     ${SOURCE_DIR}/gossip/engine.c ${SOURCE_DIR}/gossip/engine.h ${SOURCE_DIR}/gossip/swim.c
     ${SOURCE_DIR}/gossip/swim.h)
set(bad "")
foreach(f ${files})
  file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](zmq|czmq|zmq_[a-z_]*|rocksdb/[a-z_]*|sodium|sodium/[a-z_0-9]*)\\.h[>\"]")
  if(lines)
    list(APPEND bad "${f}: ${lines}")
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "the pure layers must stay free of I/O libraries:\n${bad}")
endif()
list(LENGTH files n)
if(n LESS 5)
  message(FATAL_ERROR "found only ${n} files under crdt/ and gossip/: the check would be empty")
endif()
message(STATUS "layering: ${n} files under crdt/ and gossip/ (engine, swim) include no zmq, rocksdb or sodium header")
