cmake_minimum_required(VERSION 3.25)
# Keeps the layering of the design honest (the linker would only catch calls, and only some):
# every #include "..." of the project's own headers, and every I/O library header, is checked
# against the arrows the layers may follow.
#
#   include/engram/   the public API: includes only include/engram/ headers
#   crdt/             includes crdt/, proto/, include/engram/; no I/O library (zmq, czmq,
#                     RocksDB, libsodium)
#   gossip/           includes gossip/, the public crdt/ headers (never crdt/internal.h),
#                     proto/, include/engram/; no I/O library (it is sans-I/O). Inside it the
#                     arrow runs engine -> swim: swim.* never includes engine.h
#   node/X/           includes its own folder, the node/ folders below it, proto/,
#                     include/engram/, and only where its rule says so the public crdt/
#                     headers and gossip/engine.h, swim.h (crdt/array.h, the array growth:
#                     every folder); never another folder's internal.h.
#                     In node/ (every folder must have a rule here, so a new one is checked):
#                       common <- search, trust <- store <- cluster <- api <- daemon
#                       common <- http <- daemon (the monitoring listener)
#                       client -> common (libengram: nothing else of node/)
#                       cli    -> trust, common, and libengram through include/engram/
#
# Project headers are checked whether included with "..." or <...>.
#
# Run: cmake -DSOURCE_DIR=... -P layering_test.cmake
set(node_below_common "")
set(node_below_search common)
set(node_below_trust common)
set(node_below_store search trust common)
set(node_below_cluster store search trust common)
set(node_below_api cluster store search trust common)
set(node_below_http common)
set(node_below_daemon api http cluster store search trust common)
set(node_below_client common)
set(node_below_cli trust common)
# Which folders may use the CRDT kernel's public headers and the gossip engine directly.
set(node_crdt store cluster api client)
set(node_gossip store cluster)

set(io_regex "^(zmq|czmq|zmq_[a-z_]*|rocksdb/[a-z_]*|sodium|sodium/[a-z_0-9]*)\\.h$")
set(bad "")
set(checked 0)

# Reads every include of file f into the lists `quoted` ("...") and `angled` (<...>).
macro(read_includes f)
  file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  set(quoted "")
  set(angled "")
  foreach(line ${lines})
    if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\"")
      list(APPEND quoted "${CMAKE_MATCH_1}")
    elseif(line MATCHES "^[ \t]*#[ \t]*include[ \t]*<((crdt|gossip|node|proto|engram)/[^>]+)>")
      list(APPEND quoted "${CMAKE_MATCH_1}") # a project header, whatever its brackets
    elseif(line MATCHES "^[ \t]*#[ \t]*include[ \t]*<([^>]+)>")
      list(APPEND angled "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  math(EXPR checked "${checked} + 1")
endmacro()

# A quoted include of one of the project's own headers is allowed when it matches one of the
# regexes in the list named by allowed_var.
macro(check_quoted f allowed_var)
  foreach(inc ${quoted})
    set(ok FALSE)
    foreach(re ${${allowed_var}})
      if(inc MATCHES "${re}")
        set(ok TRUE)
      endif()
    endforeach()
    if(NOT ok)
      list(APPEND bad "${f}: includes \"${inc}\", which its layer may not")
    endif()
  endforeach()
endmacro()

macro(check_no_io f)
  foreach(inc ${angled} ${quoted})
    if(inc MATCHES "${io_regex}")
      list(APPEND bad "${f}: includes <${inc}>, an I/O library, in a pure layer")
    endif()
  endforeach()
endmacro()

# Generated protobuf-c headers and the public API may be used by every layer.
set(common_allowed "^proto/[a-z_]+\\.pb-c\\.h$" "^engram/[a-z_]+\\.h$")
set(crdt_public "^crdt/[a-z_]+\\.h$")

file(GLOB include_files ${SOURCE_DIR}/include/engram/*.h)
set(allowed "^engram/[a-z_]+\\.h$" "^[a-z_]+\\.h$")
foreach(f ${include_files})
  read_includes(${f})
  check_quoted(${f} allowed)
endforeach()

file(GLOB crdt_files ${SOURCE_DIR}/crdt/*.c ${SOURCE_DIR}/crdt/*.h)
set(allowed ${common_allowed} "^crdt/[a-z_]+\\.h$")
foreach(f ${crdt_files})
  read_includes(${f})
  check_quoted(${f} allowed)
  check_no_io(${f})
endforeach()

file(GLOB gossip_files ${SOURCE_DIR}/gossip/*.c ${SOURCE_DIR}/gossip/*.h)
set(allowed ${common_allowed} "^gossip/[a-z_]+\\.h$")
foreach(f ${gossip_files})
  read_includes(${f})
  foreach(inc ${quoted})
    if(inc MATCHES "${crdt_public}" AND NOT inc STREQUAL "crdt/internal.h")
      list(APPEND allowed "^${inc}$")
    endif()
  endforeach()
  check_quoted(${f} allowed)
  check_no_io(${f})
  get_filename_component(base ${f} NAME_WE)
  if(base STREQUAL "swim" AND "gossip/engine.h" IN_LIST quoted)
    list(APPEND bad "${f}: includes \"gossip/engine.h\": membership must not know the data plane")
  endif()
  set(allowed ${common_allowed} "^gossip/[a-z_]+\\.h$")
endforeach()

set(node_count 0)
file(GLOB node_entries LIST_DIRECTORIES true ${SOURCE_DIR}/node/*)
set(node_folders "")
foreach(entry ${node_entries})
  if(IS_DIRECTORY ${entry})
    get_filename_component(folder ${entry} NAME)
    list(APPEND node_folders ${folder})
    if(NOT DEFINED node_below_${folder})
      list(APPEND bad "node/${folder}/: a folder with no rule in tests/layering_test.cmake")
    endif()
  endif()
endforeach()
foreach(folder ${node_folders})
  file(GLOB_RECURSE files ${SOURCE_DIR}/node/${folder}/*.c ${SOURCE_DIR}/node/${folder}/*.h)
  # crdt/array.h, the growth of hand-managed arrays, is a utility every folder shares
  set(allowed ${common_allowed} "^node/${folder}/[a-z_/]+\\.h$" "^crdt/array\\.h$")
  foreach(below ${node_below_${folder}})
    list(APPEND allowed "^node/${below}/[a-z_]+\\.h$")
  endforeach()
  if(folder IN_LIST node_gossip)
    list(APPEND allowed "^gossip/engine\\.h$" "^gossip/swim\\.h$")
  endif()
  foreach(f ${files})
    read_includes(${f})
    set(file_allowed ${allowed})
    foreach(inc ${quoted})
      if(folder IN_LIST node_crdt AND inc MATCHES "${crdt_public}"
         AND NOT inc STREQUAL "crdt/internal.h")
        list(APPEND file_allowed "^${inc}$")
      endif()
      if(inc MATCHES "^node/([a-z_]+)/internal\\.h$" AND NOT CMAKE_MATCH_1 STREQUAL folder)
        list(APPEND bad "${f}: includes \"${inc}\", another folder's internals")
      endif()
    endforeach()
    check_quoted(${f} file_allowed)
    math(EXPR node_count "${node_count} + 1")
  endforeach()
endforeach()

# Every source file of node/ lives in one of its folders.
file(GLOB node_top ${SOURCE_DIR}/node/*.c ${SOURCE_DIR}/node/*.h)
foreach(f ${node_top})
  list(APPEND bad "${f}: a source file at the top of node/, outside every subsystem's folder")
endforeach()

if(bad)
  string(REPLACE ";" "\n" bad "${bad}")
  message(FATAL_ERROR "layering broken:\n${bad}")
endif()
list(LENGTH crdt_files ncrdt)
list(LENGTH gossip_files ngossip)
if(ncrdt LESS 10 OR ngossip LESS 2 OR node_count LESS 20)
  message(FATAL_ERROR "found only ${ncrdt} crdt, ${ngossip} gossip and ${node_count} node files: "
                      "the check would be empty")
endif()
message(STATUS "layering: ${checked} files checked (${ncrdt} crdt, ${ngossip} gossip, "
               "${node_count} node); every include follows an allowed arrow")
