# The code's shape (issue 19): no function of the product over 80 lines. Static: reads the
# sources, builds nothing.
find_program(SP_STYLE_PYTHON python3 REQUIRED)
sp_test(NAME style/function-length
        COMMAND ${SP_STYLE_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check-function-length.py
                ${PROJECT_SOURCE_DIR} 80)
sp_test_properties(style/function-length PROPERTIES TIMEOUT 60 LABELS "unit;style")
