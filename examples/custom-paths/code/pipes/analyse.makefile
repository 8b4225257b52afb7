#? Sum the values of the table
results/sum.txt: inputs/table.csv
	mkdir -p results
	tail -n +2 inputs/table.csv | cut -d, -f2 | paste -sd+ | bc > $@
