"""The Streamlit app's pages and widgets (the only package besides app.py importing streamlit)."""
