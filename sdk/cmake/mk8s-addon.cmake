# mk8s_add_addon(<target> <source>...): a MODULE library that mk8sd can load. Symbols are hidden
# except the two the SDK's MK8S_ADDON macro exports; the file is named <target>.so.
function(mk8s_add_addon target)
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE mk8s::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    # Fail at link time, not at dlopen time, on a symbol the addon forgot to define.
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
endfunction()
