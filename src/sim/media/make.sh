#!/usr/bin/env bash
# Regenerates the simulator's tiny media (committed; the build and CI never run this).
# Needs Debian's ffmpeg (apt-get install ffmpeg). Run from anywhere:
#   bash src/sim/media/make.sh
# The sizes below are what src/sim/media.rs declares as width/height: change both together.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
# Short test patterns at a low frame rate and a high CRF: they compress to a few kB.
pattern() { echo "testsrc=size=$1:rate=${3:-10}:duration=$2"; }
tone="sine=frequency=440:sample_rate=44100:duration=4"
x264=(-c:v libx264 -preset veryslow -crf 45 -pix_fmt yuv420p -profile:v main -g 5 -keyint_min 5 -sc_threshold 0)

# VIDEO download: H.264 + AAC MP4, moov first (faststart) so a browser can seek with Range.
ff -f lavfi -i "$(pattern 1920x1080 4 5)" -f lavfi -i "$tone" "${x264[@]}" \
  -c:a aac -b:a 24k -ac 1 -shortest -movflags +faststart video-download.mp4
# VIDEO preview (and public preview): H.264 MP4, no audio, a keyframe every 0.5 s.
ff -f lavfi -i "$(pattern 1280x720 4)" "${x264[@]}" -an -movflags +faststart video-preview.mp4
# VIDEO thumbnail: the first frame as JPEG.
ff -f lavfi -i "$(pattern 640x360 1)" -frames:v 1 -q:v 8 video-thumbnail.jpg
# VIDEO hls: MPEG-TS segments of 2 s (the simulator writes and signs the playlist itself).
rm -f hls-seg*.ts
ff -f lavfi -i "$(pattern 640x360 4)" "${x264[@]}" -an -f hls -hls_time 2 \
  -hls_playlist_type vod -hls_segment_filename 'hls-seg%d.ts' hls-made.m3u8
echo "ffmpeg's playlist (durations the simulator's must match):"
cat hls-made.m3u8
rm -f hls-made.m3u8

# IMAGE download (PNG), preview and public preview (WebP), thumbnail (JPEG; also AUDIO's).
# SMPTE bars: large flat areas, so a 2048x2048 PNG stays small.
ff -f lavfi -i "smptebars=size=2048x2048:rate=1" -frames:v 1 -compression_level 100 image-download.png
ff -f lavfi -i "$(pattern 1024x1024 1)" -frames:v 1 -c:v libwebp -quality 30 image-preview.webp
ff -f lavfi -i "$(pattern 256x256 1)" -frames:v 1 -q:v 8 image-thumbnail.jpg

# AUDIO download (MP3) and preview (Opus in Ogg).
ff -f lavfi -i "$tone" -ac 1 -c:a libmp3lame -b:a 32k audio-download.mp3
ff -f lavfi -i "$tone" -ac 1 -c:a libopus -b:a 16k audio-preview.ogg

ls -l ./*.mp4 ./*.jpg ./*.ts ./*.png ./*.webp ./*.mp3 ./*.ogg
du -cb ./*.mp4 ./*.jpg ./*.ts ./*.png ./*.webp ./*.mp3 ./*.ogg | tail -1
