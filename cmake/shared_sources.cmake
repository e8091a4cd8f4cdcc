# Which CPU sources the emulated library (tests/emulation) can share with ember.
#
# ember_emu is built from ember's CPU sources plus the CUDA files compiled as host C++. A CPU source
# compiles to the same object for both unless something it reads differs between them: a CUDA,
# cuBLAS or cuDNN header (the emulated build sees the stand-ins of tests/emulation/include), the
# EMBER_EMULATION macro, or, when ember itself is built without CUDA, the EMBER_WITH_CUDA macro
# (always defined in the emulated build). Every other source is compiled once (ember_cpu_objects)
# and linked into both: in CI that halves the C++ work of the CPU library.
#
# The test reads the source and every project file it includes ("..." includes, transitively, .inc
# included). Those files become configure dependencies: editing a header re-runs the (cached,
# seconds-long) configure, so that a file that starts to depend on CUDA moves to the per-library list.

# Headers whose EMBER_WITH_CUDA sections only declare functions (kernels/kernels.h: the ember::cuda
# op declarations). A declaration that the file never calls compiles to nothing, and a call outside
# the file's own #ifdef EMBER_WITH_CUDA would not compile without CUDA: for these, only the CUDA
# headers and EMBER_EMULATION count.
set(EMBER_DECLARATION_HEADERS ${PROJECT_SOURCE_DIR}/kernels/kernels.h)

# Sets `out` to TRUE when `file`, or a project file it includes, matches `regex` (a header of
# EMBER_DECLARATION_HEADERS: `decl_regex`).
function(ember_source_reads file regex decl_regex out)
  set(todo ${file})
  set(seen "")
  set(${out} FALSE PARENT_SCOPE)
  while(todo)
    list(POP_FRONT todo f)
    if(f IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${f})
    file(READ ${f} text)
    set(r "${regex}")
    if(f IN_LIST EMBER_DECLARATION_HEADERS)
      set(r "${decl_regex}")
    endif()
    if(text MATCHES "${r}")
      set(${out} TRUE PARENT_SCOPE)
      set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${seen})
      return()
    endif()
    get_filename_component(dir ${f} DIRECTORY)
    string(REGEX MATCHALL "#[ \t]*include[ \t]*\"[^\"]+\"" incs "${text}")
    foreach(inc ${incs})
      string(REGEX REPLACE "^#[ \t]*include[ \t]*\"([^\"]+)\"$" "\\1" name "${inc}")
      if(EXISTS ${PROJECT_SOURCE_DIR}/${name})
        list(APPEND todo ${PROJECT_SOURCE_DIR}/${name})
      elseif(EXISTS ${dir}/${name})
        get_filename_component(p ${dir}/${name} ABSOLUTE)
        list(APPEND todo ${p})
      endif()
    endforeach()
  endwhile()
  set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${seen})
endfunction()

# Splits `sources` into `shared_out` (same object in ember and ember_emu) and `own_out` (compiled
# by each library with its own definitions). `with_cuda`: whether ember is built with CUDA.
function(ember_split_shared_sources sources with_cuda shared_out own_out)
  # A CUDA header is any include whose name mentions cuda/cublas/cudnn (core/cuda/*.h too).
  # A macro counts where a preprocessor condition tests it (not in a comment).
  set(cond "#[ \t]*(if|ifdef|ifndef|elif)[^\n]*")
  set(decl_regex "#[ \t]*include[ \t]*[<\"][^>\"]*(cuda|cublas|cudnn)[^>\"]*[>\"]|${cond}EMBER_EMULATION")
  # NCCL is ember's alone (core/dist/*.cu): a source that tests EMBER_WITH_NCCL is compiled by each.
  set(regex "${decl_regex}|${cond}EMBER_WITH_NCCL")
  if(NOT with_cuda)
    string(APPEND regex "|${cond}EMBER_WITH_CUDA")
  endif()
  set(shared "")
  set(own "")
  foreach(src ${sources})
    ember_source_reads(${src} "${regex}" "${decl_regex}" differs)
    if(differs)
      list(APPEND own ${src})
    else()
      list(APPEND shared ${src})
    endif()
  endforeach()
  list(LENGTH shared n_shared)
  list(LENGTH own n_own)
  message(STATUS "ember: ${n_shared} CPU sources compiled once for ember and ember_emu, ${n_own} compiled for each")
  set(${shared_out} ${shared} PARENT_SCOPE)
  set(${own_out} ${own} PARENT_SCOPE)
endfunction()
