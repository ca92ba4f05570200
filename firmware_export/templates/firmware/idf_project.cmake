# ESP-IDF example: plays back @SECONDS@ s of MIT-BIH record @RECORD@ through the edgeecg component
# (components/edgeecg) and prints one line per beat. Build: idf.py set-target @IDF_CHIP@ && idf.py flash monitor
cmake_minimum_required(VERSION 3.16)
include($ENV{IDF_PATH}/tools/cmake/project.cmake)
project(edgeecg_playback)
