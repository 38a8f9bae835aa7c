;; The two passes of Pillow's 8-bit resample (src/libImaging/Resample.c) for packed RGB, with
;; 128-bit SIMD: the same integer arithmetic as pil-resize.ts (fixed-point weights with 22
;; fractional bits, sums from 2^21, clip8(sum >> 22)), four or sixteen values at a time.
;; Built into pil-resize-wasm.ts by `npm run build:wasm`; a test checks the two agree.
(module
  (memory (export "memory") 1)

  ;; Horizontal pass. For each of `rows` rows (inStride bytes apart) and each of `outW` outputs:
  ;; taps from bounds[2x] for bounds[2x+1] pixels, weights kk[x*ksize ...]. Writes 3 bytes per
  ;; output (a 4-byte store whose last byte the next output overwrites: out needs 1 byte of slack;
  ;; a 4-byte load at the last pixel reads 1 byte past it: src needs 1 byte of slack).
  (func (export "hpass") (param $src i32) (param $inStride i32) (param $rows i32) (param $out i32)
                         (param $outW i32) (param $bounds i32) (param $kk i32) (param $ksize i32)
    (local $y i32) (local $x i32) (local $row i32) (local $o i32) (local $p i32) (local $t i32)
    (local $tend i32) (local $b i32) (local $acc v128)
    (local.set $o (local.get $out))
    (block $ydone (loop $yloop
      (br_if $ydone (i32.ge_u (local.get $y) (local.get $rows)))
      (local.set $row (i32.add (local.get $src) (i32.mul (local.get $y) (local.get $inStride))))
      (local.set $x (i32.const 0))
      (block $xdone (loop $xloop
        (br_if $xdone (i32.ge_u (local.get $x) (local.get $outW)))
        (local.set $b (i32.add (local.get $bounds) (i32.shl (local.get $x) (i32.const 3))))
        (local.set $p (i32.add (local.get $row) (i32.mul (i32.load (local.get $b)) (i32.const 3))))
        (local.set $t (i32.add (local.get $kk) (i32.shl (i32.mul (local.get $x) (local.get $ksize)) (i32.const 2))))
        (local.set $tend (i32.add (local.get $t) (i32.shl (i32.load offset=4 (local.get $b)) (i32.const 2))))
        (local.set $acc (i32x4.splat (i32.const 2097152)))
        (block $tdone (loop $tloop
          (br_if $tdone (i32.ge_u (local.get $t) (local.get $tend)))
          (local.set $acc
            (i32x4.add (local.get $acc)
              (i32x4.mul
                (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (local.get $p))))
                (i32x4.splat (i32.load (local.get $t))))))
          (local.set $p (i32.add (local.get $p) (i32.const 3)))
          (local.set $t (i32.add (local.get $t) (i32.const 4)))
          (br $tloop)))
        ;; clip8: >> 22, then saturate to 0..255 (the narrowing does exactly Pillow's clamp).
        (v128.store32_lane 0 (local.get $o)
          (i8x16.narrow_i16x8_u
            (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $acc) (i32.const 22)) (local.get $acc))
            (v128.const i32x4 0 0 0 0)))
        (local.set $o (i32.add (local.get $o) (i32.const 3)))
        (local.set $x (i32.add (local.get $x) (i32.const 1)))
        (br $xloop)))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br $yloop))))

  ;; Vertical pass. For each of `outH` output rows: rows bounds[2y] - shift ... of `stride` bytes,
  ;; weights kk[y*ksize ...]; sixteen bytes at a time (the last block of a row spills into the
  ;; next row, which is computed after it; src and out need 16 bytes of slack).
  (func (export "vpass") (param $src i32) (param $stride i32) (param $out i32) (param $outH i32)
                         (param $bounds i32) (param $kk i32) (param $ksize i32) (param $shift i32)
    (local $y i32) (local $i i32) (local $base i32) (local $t0 i32) (local $tend i32) (local $t i32)
    (local $p i32) (local $o i32) (local $b i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $v v128) (local $k v128) (local $lo v128) (local $hi v128)
    (block $ydone (loop $yloop
      (br_if $ydone (i32.ge_u (local.get $y) (local.get $outH)))
      (local.set $b (i32.add (local.get $bounds) (i32.shl (local.get $y) (i32.const 3))))
      (local.set $base (i32.add (local.get $src)
        (i32.mul (i32.sub (i32.load (local.get $b)) (local.get $shift)) (local.get $stride))))
      (local.set $t0 (i32.add (local.get $kk) (i32.shl (i32.mul (local.get $y) (local.get $ksize)) (i32.const 2))))
      (local.set $tend (i32.add (local.get $t0) (i32.shl (i32.load offset=4 (local.get $b)) (i32.const 2))))
      (local.set $o (i32.add (local.get $out) (i32.mul (local.get $y) (local.get $stride))))
      (local.set $i (i32.const 0))
      (block $idone (loop $iloop
        (br_if $idone (i32.ge_u (local.get $i) (local.get $stride)))
        (local.set $a0 (i32x4.splat (i32.const 2097152)))
        (local.set $a1 (local.get $a0))
        (local.set $a2 (local.get $a0))
        (local.set $a3 (local.get $a0))
        (local.set $t (local.get $t0))
        (local.set $p (i32.add (local.get $base) (local.get $i)))
        (block $tdone (loop $tloop
          (br_if $tdone (i32.ge_u (local.get $t) (local.get $tend)))
          (local.set $k (i32x4.splat (i32.load (local.get $t))))
          (local.set $v (v128.load (local.get $p)))
          (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
          (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
          (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $k))))
          (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $k))))
          (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $k))))
          (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $k))))
          (local.set $p (i32.add (local.get $p) (local.get $stride)))
          (local.set $t (i32.add (local.get $t) (i32.const 4)))
          (br $tloop)))
        (v128.store (i32.add (local.get $o) (local.get $i))
          (i8x16.narrow_i16x8_u
            (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a0) (i32.const 22)) (i32x4.shr_s (local.get $a1) (i32.const 22)))
            (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a2) (i32.const 22)) (i32x4.shr_s (local.get $a3) (i32.const 22)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $iloop)))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br $yloop))))
)
