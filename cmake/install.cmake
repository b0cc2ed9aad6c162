# Install rules, all in one place (included from the top-level CMakeLists.txt after node/,
# whose targets it installs, and before tests/, whose install test checks them):
#
#   bin/                      engramd, engram
#   lib/                      libengram.so.0.1.0 with soname libengram.so.0, and the
#                             libengram.so link that -lengram finds
#   lib/pkgconfig/engram.pc   for pkg-config --cflags --libs engram
#   include/engram/*.h        the public headers
#   share/doc/engram/examples/hello.c
#   lib/python3/dist-packages/engram/        the Python client, with py.typed (PEP 561: type
#                             checkers read its type hints), when it is built (protoc)
#   lib/python3/dist-packages/engram_proto/  the module protoc generated from api.proto
#
# (lib/python3/dist-packages is ENGRAM_INSTALL_PYTHONDIR, where Debian's python3 finds the
# packages of prefix /usr; another prefix's goes on PYTHONPATH.)
# (lib/ is CMAKE_INSTALL_LIBDIR, fixed when the build is configured: lib/x86_64-linux-gnu on
# Debian for -DCMAKE_INSTALL_PREFIX=/usr, else lib.)
# `cmake --install build --prefix DIR` may choose the prefix at install time, so engram.pc
# is written then, with that prefix. tests/install checks the installed tree from outside.
include(GNUInstallDirs)

# The engram CLI finds libengram in its own prefix (an RPATH relative to the program), wherever
# the prefix is moved. engramd does not link libengram.
file(RELATIVE_PATH ENGRAM_BIN_TO_LIB /${CMAKE_INSTALL_BINDIR} /${CMAKE_INSTALL_LIBDIR})
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set_target_properties(engram-cli PROPERTIES INSTALL_RPATH "${CMAKE_INSTALL_LIBDIR}")
else()
  set_target_properties(engram-cli PROPERTIES INSTALL_RPATH "$ORIGIN/${ENGRAM_BIN_TO_LIB}")
endif()

install(TARGETS engramd engram-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS engram LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/engram DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_SOURCE_DIR}/node/client/examples/hello.c
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(ENGRAM_INSTALL_PYTHONDIR lib/python3/dist-packages CACHE STRING
  "Where cmake --install puts the Python client (relative: under the prefix)")
if(TARGET engram-python)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/node/client/python/engram
                    ${PROJECT_BINARY_DIR}/python/engram_proto
    DESTINATION ${ENGRAM_INSTALL_PYTHONDIR}
    FILES_MATCHING PATTERN "*.py" PATTERN "py.typed" PATTERN "__pycache__" EXCLUDE)
endif()

# engram.pc: cmake/engram.pc.in with the install-time prefix. libdir and includedir are
# written relative to ${prefix} unless they were configured absolute.
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(ENGRAM_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(ENGRAM_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
set(ENGRAM_PC_FILE ${PROJECT_BINARY_DIR}/engram.pc)
install(CODE "
  set(ENGRAM_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(ENGRAM_PC_LIBDIR [[${ENGRAM_PC_LIBDIR}]])
  set(ENGRAM_PC_INCLUDEDIR [[${ENGRAM_PC_INCLUDEDIR}]])
  set(PROJECT_VERSION [[${PROJECT_VERSION}]])
  configure_file([[${PROJECT_SOURCE_DIR}/cmake/engram.pc.in]] [[${ENGRAM_PC_FILE}]] @ONLY)
")
install(FILES ${ENGRAM_PC_FILE} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
