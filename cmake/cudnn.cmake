# Finds cuDNN 9 and defines the imported target ember_cudnn.
# With CUDNN_ROOT (a -D option or the environment variable) it looks there and nowhere else: an
# explicit location that lacks cuDNN is an error naming it, never a silent fallback to another
# copy (headers of one version with the library of another). scripts/gpu_check.sh passes the
# folder it chose (the toolkit's cuDNN, or PyTorch's nvidia.cudnn wheel on a machine without
# Debian packages). Without CUDNN_ROOT: the CUDA toolkit, /usr, then the nvidia.cudnn wheel of the
# Python interpreter CMake finds.
set(CUDNN_ROOT "$ENV{CUDNN_ROOT}" CACHE PATH "Where cuDNN 9 lives (include/ and lib/); empty: search")
if(CUDNN_ROOT)
  find_path(CUDNN_INCLUDE_DIR cudnn.h PATHS ${CUDNN_ROOT} PATH_SUFFIXES include NO_DEFAULT_PATH)
  # The wheel ships libcudnn.so.9 without the unversioned link.
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 PATHS ${CUDNN_ROOT} PATH_SUFFIXES lib lib64
               NO_DEFAULT_PATH)
  if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
    message(FATAL_ERROR "cuDNN 9 not found under CUDNN_ROOT=${CUDNN_ROOT} (looked for include/cudnn.h and "
                        "lib/libcudnn.so*: header ${CUDNN_INCLUDE_DIR}, library ${CUDNN_LIBRARY})")
  endif()
else()
  set(_cudnn_hints ${CUDAToolkit_LIBRARY_ROOT} /usr/local/cuda /usr)
  include(${CMAKE_CURRENT_LIST_DIR}/wheel_path.cmake)
  ember_wheel_path(nvidia.cudnn _py_cudnn)
  if(_py_cudnn)
    list(APPEND _cudnn_hints ${_py_cudnn})
  endif()
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_cudnn_hints} PATH_SUFFIXES include)
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_cudnn_hints} PATH_SUFFIXES lib lib64)
  if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
    message(FATAL_ERROR "cuDNN 9 not found: set CUDNN_ROOT, or configure with -DEMBER_CUDA=OFF")
  endif()
endif()
message(STATUS "ember: cuDNN ${CUDNN_LIBRARY} (headers ${CUDNN_INCLUDE_DIR})")
add_library(ember_cudnn INTERFACE)
target_include_directories(ember_cudnn INTERFACE ${CUDNN_INCLUDE_DIR})
target_link_libraries(ember_cudnn INTERFACE ${CUDNN_LIBRARY})
