# Finds cuDNN 9: in the CUDA toolkit, under CUDNN_ROOT, or in PyTorch's nvidia.cudnn wheel
# (the GPU test machine has cuDNN only there). Defines the imported target ember_cudnn.
set(CUDNN_ROOT "$ENV{CUDNN_ROOT}" CACHE PATH "Where cuDNN 9 lives (include/ and lib/)")
set(_cudnn_hints ${CUDNN_ROOT} ${CUDAToolkit_LIBRARY_ROOT} /usr/local/cuda /usr)
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  # __path__, not __file__: the wheel's nvidia/cudnn may be a namespace package (no __init__.py).
  execute_process(COMMAND ${Python3_EXECUTABLE} -c
    "import nvidia.cudnn as m; print(list(m.__path__)[0])"
    OUTPUT_VARIABLE _py_cudnn OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_py_cudnn)
    list(APPEND _cudnn_hints ${_py_cudnn})
  endif()
endif()
find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_cudnn_hints} PATH_SUFFIXES include)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_cudnn_hints} PATH_SUFFIXES lib lib64)
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  message(FATAL_ERROR "cuDNN 9 not found: set CUDNN_ROOT, or configure with -DEMBER_CUDA=OFF")
endif()
message(STATUS "ember: cuDNN ${CUDNN_LIBRARY} (headers ${CUDNN_INCLUDE_DIR})")
add_library(ember_cudnn INTERFACE)
target_include_directories(ember_cudnn INTERFACE ${CUDNN_INCLUDE_DIR})
target_link_libraries(ember_cudnn INTERFACE ${CUDNN_LIBRARY})
