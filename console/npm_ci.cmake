# Runs `npm ci` in the console's source folder only when node_modules is missing or was installed
# from another package-lock.json (its hash is kept inside node_modules, which npm ci replaces whole),
# then writes STAMP (in the build tree) only when it changed, so the front end is rebuilt only then.
#   cmake -DNPM=... -DSRC=console/ -DSTAMP=build/console/npm-ci.stamp -P npm_ci.cmake
file(SHA256 "${SRC}/package-lock.json" lock_hash)
set(installed "")
if(EXISTS "${SRC}/node_modules/.journeygate-lock.sha256")
  file(READ "${SRC}/node_modules/.journeygate-lock.sha256" installed)
endif()
if(NOT installed STREQUAL lock_hash OR NOT EXISTS "${SRC}/node_modules/.package-lock.json")
  message(STATUS "console: npm ci (node_modules missing or package-lock.json changed)")
  execute_process(COMMAND "${NPM}" ci --no-audit --no-fund WORKING_DIRECTORY "${SRC}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "console: npm ci failed (${rc}): the npm registry must be reachable once to install the pinned packages")
  endif()
  file(WRITE "${SRC}/node_modules/.journeygate-lock.sha256" "${lock_hash}")
endif()
set(old "")
if(EXISTS "${STAMP}")
  file(READ "${STAMP}" old)
endif()
if(NOT old STREQUAL lock_hash)
  file(WRITE "${STAMP}" "${lock_hash}")
endif()
