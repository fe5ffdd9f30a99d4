<?php
/**
 * Appends whole lines to the orders log, safely under concurrency.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * One append = fopen('ab') + flock(LOCK_EX) + one fwrite of the whole line + fflush + unlock,
 * so lines from concurrent checkouts (separate PHP processes) never interleave, whatever their
 * length. A failed or short write is rolled back to the size the file had under the lock, so a
 * reader never sees half a line. Every failure is thrown as a RuntimeException for the caller to
 * report; nothing here writes to the screen.
 */
class TAP_Log_Writer {

	const DIR_MODE  = 0750;
	const FILE_MODE = 0640;

	/**
	 * Appends one line (which must end with "\n").
	 *
	 * @param string $path Absolute file path.
	 * @param string $line The line, newline included.
	 * @throws InvalidArgumentException When the line is not one whole line.
	 * @throws RuntimeException When the file cannot be written.
	 */
	public function append( $path, $line ) {
		if ( ! is_string( $line ) || '' === $line || "\n" !== substr( $line, -1 ) || false !== strpos( substr( $line, 0, -1 ), "\n" ) ) {
			throw new InvalidArgumentException( 'A log line must be one line ending with a newline.' );
		}
		$this->ensure_directory( dirname( $path ) );

		$created = ! file_exists( $path );
		$handle  = self::quietly(
			static function () use ( $path ) {
				return fopen( $path, 'ab' ); // phpcs:ignore WordPress.WP.AlternativeFunctions -- append + flock needs a raw handle.
			},
			'open ' . $path
		);

		try {
			if ( $created ) {
				@chmod( $path, self::FILE_MODE ); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- best effort; the write below is what matters.
			}
			if ( ! flock( $handle, LOCK_EX ) ) {
				throw new RuntimeException( 'Could not lock ' . $path );
			}
			try {
				$this->write_locked( $handle, $path, $line );
			} finally {
				flock( $handle, LOCK_UN );
			}
		} finally {
			fclose( $handle ); // phpcs:ignore WordPress.WP.AlternativeFunctions
		}
	}

	/**
	 * Creates the log directory (mode 0750) when missing.
	 *
	 * @param string $dir Directory.
	 * @throws RuntimeException When it cannot be created.
	 */
	public function ensure_directory( $dir ) {
		if ( is_dir( $dir ) ) {
			return;
		}
		$made = self::quietly(
			static function () use ( $dir ) {
				return mkdir( $dir, self::DIR_MODE, true ) || is_dir( $dir );
			},
			'create directory ' . $dir
		);
		if ( true === $made ) {
			@chmod( $dir, self::DIR_MODE ); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- the umask may have narrowed it; never widen beyond 0750.
		}
	}

	/**
	 * The write itself, with the lock held.
	 *
	 * @param resource $handle Open, locked handle.
	 * @param string   $path   Path, for messages.
	 * @param string   $line   Line.
	 * @throws RuntimeException On failure (after rolling back a partial line).
	 */
	private function write_locked( $handle, $path, $line ) {
		$stat   = fstat( $handle );
		$before = is_array( $stat ) ? (int) $stat['size'] : null;
		$length = strlen( $line );

		$written = @fwrite( $handle, $line ); // phpcs:ignore WordPress.WP.AlternativeFunctions, WordPress.PHP.NoSilencedErrors
		// A regular file takes the whole line in one call; finish a short write should one happen.
		while ( false !== $written && $written > 0 && $written < $length ) {
			$more = @fwrite( $handle, substr( $line, $written ) ); // phpcs:ignore WordPress.WP.AlternativeFunctions, WordPress.PHP.NoSilencedErrors
			$written = ( false === $more || 0 === $more ) ? false : $written + $more;
		}

		if ( $written !== $length || ! fflush( $handle ) ) {
			if ( null !== $before ) {
				@ftruncate( $handle, $before ); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- roll back half a line.
			}
			$last = error_get_last();
			throw new RuntimeException( sprintf( 'Could not write %d bytes to %s%s', $length, $path, $last ? ': ' . $last['message'] : '' ) );
		}
	}

	/**
	 * Runs a filesystem call, turning its PHP warning into a RuntimeException.
	 *
	 * @param callable $operation Returns false on failure.
	 * @param string   $what      Description for the message.
	 * @return mixed The operation's result.
	 * @throws RuntimeException When the operation returns false.
	 */
	private static function quietly( callable $operation, $what ) {
		$warning = '';
		set_error_handler( // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_set_error_handler
			static function ( $errno, $message ) use ( &$warning ) {
				$warning = $message;
				return true;
			}
		);
		try {
			$result = $operation();
		} finally {
			restore_error_handler();
		}
		if ( false === $result ) {
			throw new RuntimeException( 'Could not ' . $what . ( '' !== $warning ? ': ' . $warning : '' ) );
		}
		return $result;
	}
}
