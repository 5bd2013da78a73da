# Run by tests/programs.rs with and without LD_PRELOAD=libhoming.so; the
# two outputs must be identical. Builds and drops large hashes and arrays,
# on threads when this perl has them.
use strict;
use warnings;
use Config;

my $THREADS = 4;
my $ENTRIES = 10000;

sub work {
    my ($seed) = @_;
    my $total = 0;
    for my $round (1 .. 2) {
        my %h;
        $h{"k$seed-$_"} = [ $_, "x" x ($_ % 7), { y => $_ } ] for 1 .. $ENTRIES;
        my @l = map { [ (1) x ($_ % 50) ] } 1 .. $ENTRIES / 4;
        my $chars = 0;
        $chars += length($_->[1]) for values %h;
        my $cells = 0;
        $cells += scalar(@$_) for @l;
        $total += scalar(keys %h) + $chars + $cells;
    }
    return $total;
}

my @results;
if ($Config{useithreads}) {
    require threads;
    my @t = map { threads->create(\&work, $_) } 0 .. $THREADS - 1;
    @results = map { $_->join } @t;
}
else {
    @results = map { work($_) } 0 .. $THREADS - 1;
}
print join(",", @results), "\n";

my @words = map { my $n = $_; join "", map { chr(97 + ($n * 7 + $_ * 3) % 26) } 1 .. ($n % 20 + 1) } 1 .. 20000;
my %count;
$count{$_}++ for @words;
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 4];
print join(" ", map { "$_=$count{$_}" } @top), "\n";
my $text = join " ", @words;
my $matches = () = $text =~ /\b[a-e]\w{3,}\b/g;
(my $copy = $text) =~ s/([aeiou])/uc $1/ge;
print length($text), " $matches ", substr($copy, 0, 40), "\n";
