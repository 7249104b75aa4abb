# CMake package for libcapmonster, installed by scripts/install.sh:
#   find_package(capmonster REQUIRED)
#   target_link_libraries(app PRIVATE capmonster::capmonster)          # shared
#   target_link_libraries(app PRIVATE capmonster::capmonster_static)   # static
# Relocatable: paths are relative to this file (<prefix>/lib/cmake/capmonster/).

get_filename_component(_capmonster_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

if(NOT TARGET capmonster::capmonster)
  add_library(capmonster::capmonster SHARED IMPORTED)
  set_target_properties(capmonster::capmonster PROPERTIES
    IMPORTED_LOCATION "${_capmonster_prefix}/lib/libcapmonster.so.0"
    IMPORTED_SONAME "libcapmonster.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_capmonster_prefix}/include")
endif()

if(NOT TARGET capmonster::capmonster_static)
  find_package(Threads REQUIRED)
  add_library(capmonster::capmonster_static STATIC IMPORTED)
  set_target_properties(capmonster::capmonster_static PROPERTIES
    IMPORTED_LOCATION "${_capmonster_prefix}/lib/libcapmonster.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_capmonster_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m;rt;util;gcc_s")
endif()

unset(_capmonster_prefix)
