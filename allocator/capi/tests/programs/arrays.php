<?php
// Builds and drops large arrays and strings: with USE_ZEND_ALLOC=0 every
// zval, hash table and string goes through malloc. Deterministic output.
mt_srand(12);
$checksum = 0;
for ($round = 0; $round < 12; $round++) {
    // A large packed array of integers, then a hash of strings.
    $ints = range(0, 200000 + $round * 1000);
    $sum = array_sum($ints);
    $map = [];
    for ($i = 0; $i < 60000; $i++) {
        $key = "k" . ($i * 7919 % 100003) . "-" . $round;
        $map[$key] = str_repeat(chr(65 + $i % 26), 1 + $i % 97);
    }
    ksort($map);
    $len = 0;
    foreach ($map as $k => $v) {
        $len += strlen($k) + strlen($v);
    }
    // Nested arrays and a big string built in pieces.
    $nested = [];
    for ($i = 0; $i < 2000; $i++) {
        $nested[] = array_fill(0, 1 + $i % 50, [$i, "x$i"]);
    }
    $big = "";
    for ($i = 0; $i < 20000; $i++) {
        $big .= sprintf("%05d:%s;", $i, md5((string)($i + $round)));
    }
    $words = explode(";", $big);
    $checksum = crc32($checksum . $sum . $len . count($nested) . strlen($big) . count($words));
    printf("round %2d: sum %d, %d keys, %d bytes, %d nested, %d bytes of text, %u\n",
        $round, $sum, count($map), $len, count($nested), strlen($big), $checksum);
    unset($ints, $map, $nested, $big, $words);
}
// Some random churn with mt_rand (seeded: the same on every run).
$pool = [];
for ($i = 0; $i < 300000; $i++) {
    $slot = mt_rand(0, 4095);
    $pool[$slot] = str_repeat("z", mt_rand(1, 3000));
}
$total = 0;
foreach ($pool as $s) { $total += strlen($s); }
printf("pool: %d strings, %d bytes\n", count($pool), $total);
echo "memory_get_peak_usage is not compared (it is allocator-specific)\n";
