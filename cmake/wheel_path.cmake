# ember_wheel_path(<module> <var>): the folder of an NVIDIA PyPI wheel's Python package (e.g.
# nvidia.cudnn, nvidia.nccl) for the Python interpreter CMake finds, or "" when there is none.
# __path__, not __file__: the wheel's package may be a namespace package (no __init__.py).
function(ember_wheel_path module var)
  set(_path "")
  find_package(Python3 COMPONENTS Interpreter QUIET)
  if(Python3_Interpreter_FOUND)
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import ${module} as m; print(list(m.__path__)[0])"
                    OUTPUT_VARIABLE _path OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  set(${var} "${_path}" PARENT_SCOPE)
endfunction()
