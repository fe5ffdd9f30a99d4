<?php
/**
 * Appends whole lines to the orders log, safely under concurrency.
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

/**
 * One append = fopen('ab') + an exclusive lock + one fwrite of the whole line + fflush + unlock,
 * so lines from concurrent checkouts (separate PHP processes) never interleave, whatever their
 * length. A failed or short write is rolled back to the size the file had under the lock, so a
 * reader never sees half a line. Every failure is thrown as a RuntimeException for the caller to
 * report; nothing here writes to the screen.
 *
 * The lock is taken with a deadline: flock(LOCK_EX | LOCK_NB) polled with short pauses until
 * it is had or the deadline passes (TAP_Log_Lock_Timeout). A plain flock(LOCK_EX) would block
 * without limit, and the append runs inside the shopper's payment request: one stuck holder
 * (a hung process, a backup tool, an NFS lock) would hang every checkout.
 */
class TAP_Log_Writer {

	const DIR_MODE  = 0750;
	const FILE_MODE = 0640;

	/** Seconds to wait for the lock when the caller gives no deadline. */
	const DEFAULT_LOCK_TIMEOUT = 2.0;

	/** First and longest pause between two lock attempts, in seconds. */
	const FIRST_PAUSE = 0.005;
	const MAX_PAUSE   = 0.05;

	/**
	 * Monotonic clock, in seconds.
	 *
	 * @var callable
	 */
	private $clock;

	/**
	 * Pauses for a number of seconds.
	 *
	 * @var callable
	 */
	private $sleep;

	/**
	 * Constructor.
	 *
	 * @param callable|null $clock Returns monotonic seconds as a float (tests pass their own).
	 * @param callable|null $sleep Pauses for the given seconds (tests pass their own).
	 */
	public function __construct( $clock = null, $sleep = null ) {
		$this->clock = is_callable( $clock ) ? $clock : static function () {
			return hrtime( true ) / 1e9; // Monotonic: a clock change cannot stretch the wait.
		};
		$this->sleep = is_callable( $sleep ) ? $sleep : static function ( $seconds ) {
			usleep( (int) round( $seconds * 1e6 ) );
		};
	}

	/**
	 * Appends one line (which must end with "\n").
	 *
	 * @param string     $path         Absolute file path.
	 * @param string     $line         The line, newline included.
	 * @param float|null $lock_timeout Seconds to wait for the lock (null: DEFAULT_LOCK_TIMEOUT).
	 * @throws InvalidArgumentException When the line is not one whole line.
	 * @throws TAP_Log_Lock_Timeout When the lock could not be had in time (nothing written).
	 * @throws RuntimeException When the file cannot be written.
	 */
	public function append( $path, $line, $lock_timeout = null ) {
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
			self::assert_regular_file( $handle, $path );
			if ( $created ) {
				@chmod( $path, self::FILE_MODE ); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- best effort; the write below is what matters.
			}
			$this->lock( $handle, $path, null === $lock_timeout ? self::DEFAULT_LOCK_TIMEOUT : (float) $lock_timeout );
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
	 * Takes the exclusive lock, polling without blocking until the deadline.
	 *
	 * @param resource $handle  Open handle.
	 * @param string   $path    Path, for messages.
	 * @param float    $timeout Seconds to wait at most (0: a single attempt).
	 * @throws TAP_Log_Lock_Timeout When another process still holds the lock at the deadline.
	 * @throws RuntimeException When the lock fails for another reason.
	 */
	private function lock( $handle, $path, $timeout ) {
		$timeout  = max( 0.0, (float) $timeout );
		$started  = (float) call_user_func( $this->clock );
		$deadline = $started + $timeout;
		$pause    = self::FIRST_PAUSE;
		while ( true ) {
			$would_block = 0;
			if ( flock( $handle, LOCK_EX | LOCK_NB, $would_block ) ) {
				return;
			}
			if ( ! $would_block ) {
				throw new RuntimeException( 'Could not lock ' . $path );
			}
			$left = $deadline - (float) call_user_func( $this->clock );
			if ( $left <= 0 ) {
				throw new TAP_Log_Lock_Timeout( sprintf( '%s stayed locked by another process for %.1f s', $path, $timeout ) );
			}
			// Never sleep past the deadline; back off so a long wait costs few system calls.
			call_user_func( $this->sleep, min( $pause, $left ) );
			$pause = min( self::MAX_PAUSE, $pause * 2 );
		}
	}

	/**
	 * Refuses to write to anything but a regular file: the path guard checked the name, but
	 * what was opened is what counts (a FIFO, a device or a socket swapped in meanwhile).
	 *
	 * @param resource $handle Open handle.
	 * @param string   $path   Path, for messages.
	 * @throws RuntimeException When the handle is not a regular file.
	 */
	private static function assert_regular_file( $handle, $path ) {
		$stat = fstat( $handle );
		if ( ! is_array( $stat ) || 0100000 !== ( $stat['mode'] & 0170000 ) ) {
			throw new RuntimeException( 'Refusing to write to ' . $path . ': not a regular file' );
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
