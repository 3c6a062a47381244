# cmake -DMK8S=<mk8s> -DSHELL_NAME=<bash|zsh|fish> -DOUTPUT=<file> -P generate.cmake
# Writes `mk8s completion SHELL_NAME` to OUTPUT; fails the build if mk8s fails.
execute_process(COMMAND ${MK8S} completion ${SHELL_NAME}
  OUTPUT_FILE ${OUTPUT}.tmp RESULT_VARIABLE result ERROR_VARIABLE error)
if(NOT result EQUAL 0)
  file(REMOVE ${OUTPUT}.tmp)
  message(FATAL_ERROR "mk8s completion ${SHELL_NAME} failed (${result}): ${error}")
endif()
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
