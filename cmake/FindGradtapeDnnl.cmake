# Defines the imported target DNNL::dnnl from Debian's libdnnl-dev, found as a plain library:
# Debian's dnnl-config.cmake also requires the OpenCL development files. Used by the project's
# CMakeLists.txt and, installed beside it, by the package config.
if(NOT TARGET DNNL::dnnl)
  find_path(GRADTAPE_DNNL_INCLUDE_DIR dnnl.hpp REQUIRED)
  find_library(GRADTAPE_DNNL_LIBRARY dnnl REQUIRED)
  add_library(DNNL::dnnl UNKNOWN IMPORTED)
  set_target_properties(DNNL::dnnl PROPERTIES IMPORTED_LOCATION "${GRADTAPE_DNNL_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${GRADTAPE_DNNL_INCLUDE_DIR}")
endif()
