"""`make bench`: every benchmark, one after the other."""

from bench import embedder, search

if __name__ == "__main__":
    embedder.main()
    search.main()
