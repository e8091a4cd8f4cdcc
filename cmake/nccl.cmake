# Finds NCCL 2 for the CUDA build's data-parallel backend (core/dist/nccl_backend.cu) and, when
# found, defines the imported target ember_nccl. Optional: without it, CUDA tensors are reduced
# through host memory over MPI. Looked for as cuDNN is (cmake/cudnn.cmake): NCCL_ROOT (-D or the
# environment) alone when set, an error if it lacks NCCL; else the CUDA toolkit, /usr, then the
# nvidia.nccl wheel (PyPI nvidia-nccl-cu13, which scripts/setup.sh installs when nvcc is present)
# of the Python interpreter CMake finds.
set(NCCL_ROOT "$ENV{NCCL_ROOT}" CACHE PATH "Where NCCL 2 lives (include/nccl.h, lib/libnccl.so*); empty: search")
if(NCCL_ROOT)
  find_path(NCCL_INCLUDE_DIR nccl.h PATHS ${NCCL_ROOT} PATH_SUFFIXES include NO_DEFAULT_PATH)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 PATHS ${NCCL_ROOT} PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "NCCL not found under NCCL_ROOT=${NCCL_ROOT} (looked for include/nccl.h and lib/libnccl.so*)")
  endif()
else()
  set(_nccl_hints ${CUDAToolkit_LIBRARY_ROOT} /usr/local/cuda /usr)
  include(${CMAKE_CURRENT_LIST_DIR}/wheel_path.cmake)
  ember_wheel_path(nvidia.nccl _py_nccl)
  if(_py_nccl)
    list(APPEND _nccl_hints ${_py_nccl})
  endif()
  # The wheel ships libnccl.so.2 without the unversioned link.
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_nccl_hints} PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${_nccl_hints} PATH_SUFFIXES lib lib64)
endif()
if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
  message(STATUS "ember: NCCL ${NCCL_LIBRARY} (headers ${NCCL_INCLUDE_DIR})")
  add_library(ember_nccl INTERFACE)
  target_include_directories(ember_nccl INTERFACE ${NCCL_INCLUDE_DIR})
  target_link_libraries(ember_nccl INTERFACE ${NCCL_LIBRARY})
else()
  message(STATUS "ember: NCCL not found: CUDA tensors are reduced through host memory over MPI")
endif()
