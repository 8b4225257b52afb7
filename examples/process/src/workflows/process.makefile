#? Merge the precious and the remote input, sorted
#?
#? Reads data/in/precious.txt and data/in/remote.txt and writes
#? data/out/merged.txt (all lines, sorted) and data/out/count.txt.

all: data/out/merged.txt data/out/count.txt

data/out/merged.txt: data/in/precious.txt data/in/remote.txt
	mkdir -p data/out
	cat data/in/precious.txt data/in/remote.txt | LC_ALL=C sort > $@

data/out/count.txt: data/out/merged.txt
	echo "lines: $$(cat data/out/merged.txt | grep -c .)" > $@
