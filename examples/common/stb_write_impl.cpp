// The translation unit of ember_data that holds the stb_image_write implementation (PNG output;
// the tests also write JPEGs with it). Its own file so that sanitizer builds can exempt it from
// one check: its JPEG encoder shifts negative ints left (stbiw__jpg_writeBits), undefined in
// C++17 but defined since C++20 as the arithmetic shift every compiler does (examples/CMakeLists.txt).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"
