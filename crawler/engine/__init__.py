"""Everything Scrapy loads: the add-on and settings, downloader, renderer, run lifecycle, workers, the writer process, frontier and storage."""
