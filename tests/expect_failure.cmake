# Runs COMMAND ARGS and checks its exit code and that stderr mentions EXPECT_STDERR.
execute_process(COMMAND ${COMMAND} ${ARGS} RESULT_VARIABLE code ERROR_VARIABLE stderr OUTPUT_VARIABLE stdout)
if(NOT code EQUAL EXPECT_CODE)
  message(FATAL_ERROR "exit code ${code}, expected ${EXPECT_CODE}\nstderr: ${stderr}")
endif()
string(FIND "${stderr}" "${EXPECT_STDERR}" found)
if(found EQUAL -1)
  message(FATAL_ERROR "stderr does not mention '${EXPECT_STDERR}': ${stderr}")
endif()
